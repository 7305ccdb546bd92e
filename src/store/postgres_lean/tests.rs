use std::collections::HashMap;
use std::path::Path;

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::config::Config;
use crate::domain::sample::control_finding;
use crate::domain::{Finding, GroupKey, Severity};
use crate::store::postgres::PostgresStore;
use crate::store::postgres::tests::{drop_schema, schema};
use crate::store::{AuditEntry, Job, JobOutcome, NewJob, OutboxWrite, Store};

fn demo() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")).unwrap()
}

/// An instant with nanoseconds: what is stored is its microsecond, truncated, on both paths.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 9, 7, 26).unwrap()
        + chrono::Duration::nanoseconds(388_040_789)
}

/// The production S3.5 finding of resource `n`: a group of its own.
fn finding(n: usize, severity: Severity) -> Finding {
    let mut f = control_finding("S3.5", "S3 buckets should require SSL", severity);
    f.id = format!("{}-{n}", f.id);
    f.resources[0].id = format!("arn:aws:s3:::bucket-{n}");
    f
}

/// What the intake plans for `findings` when the store holds none of them (a flood of new
/// groups, as `server::intake` commits it).
fn planned(findings: &[Finding], at: DateTime<Utc>) -> ChangeSet {
    let (mut changes, _) = crate::pipeline::plan(
        findings,
        &HashMap::new(),
        &HashMap::new(),
        &demo(),
        at,
        "eventbridge:test",
    );
    common::sorted_for_locking(&mut changes);
    changes
}

fn flood(range: std::ops::Range<usize>, at: DateTime<Utc>) -> ChangeSet {
    let findings: Vec<Finding> = range.map(|n| finding(n, Severity::High)).collect();
    planned(&findings, at)
}

#[test]
fn each_row_binds_the_columns_its_statement_declares() {
    let changes = flood(0..1, now());
    let GroupWrite::InsertIfAbsent(group) = &changes.groups[0] else {
        panic!("a new group");
    };
    let rows: [(&str, &str, &[Col], JsonRow); 5] = [
        (
            "findings",
            common::UPSERT_FINDING,
            FINDING,
            sql::bind_finding(JsonRow::default(), &changes.findings[0]),
        ),
        (
            "groups",
            common::INSERT_GROUP_IF_ABSENT,
            GROUP,
            sql::bind_new_group(JsonRow::default(), group).unwrap(),
        ),
        (
            "group_history",
            history::INSERT,
            HISTORY,
            history::bind_row(JsonRow::default(), &HistoryRow::of(group, now())),
        ),
        (
            "jobs",
            common::ENQUEUE_JOB,
            JOB,
            sql::bind_job(JsonRow::default(), &changes.jobs[0], now()),
        ),
        (
            "audit",
            common::INSERT_AUDIT,
            AUDIT,
            sql::bind_audit(JsonRow::default(), &changes.audit[0]),
        ),
    ];
    for (table, one_row, declared, row) in rows {
        let (_, values, _) = rows::split_values(one_row);
        let params = rows::placeholders(values).map(|(_, n)| n).max().unwrap();
        assert_eq!(row.cols, declared, "{table}: the columns bound");
        assert_eq!(
            params,
            declared.len(),
            "{table}: the statement's parameters"
        );
    }
    // The jobs' statements share their parameters.
    let (_, values, _) = rows::split_values(common::ENQUEUE_JOB_IF_ABSENT);
    assert_eq!(
        rows::placeholders(values).map(|(_, n)| n).max(),
        Some(JOB.len())
    );
}

#[test]
fn an_instant_is_carried_as_sqlx_binds_it_truncated_to_the_microsecond() {
    let row = JsonRow::default().ts(now()).done().unwrap();
    assert_eq!(row[0].get(), r#""2026-12-05T09:07:26.388040+00:00""#);
    let far = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    assert!(JsonRow::default().ts(far).done().is_some());
    let beyond = far + chrono::Duration::days(1);
    assert!(JsonRow::default().ts(beyond).done().is_none(), "year 10000");
}

#[test]
fn a_derived_statement_reads_each_parameter_from_its_element() {
    assert_eq!(
        from_json_rows(common::ENQUEUE_JOB_IF_ABSENT, 5, JOB, ""),
        "INSERT INTO jobs
        (kind, subject, state, run_at, attempts, created_at, updated_at)
     SELECT r->>0, r->>1, 'pending', (r->>2)::timestamptz, 0, (r->>3)::timestamptz, \
         (r->>3)::timestamptz FROM jsonb_array_elements($5) WITH ORDINALITY AS e(r, ord)  \
         ORDER BY ord
     ON CONFLICT (kind, subject) WHERE state = 'pending' DO NOTHING"
    );
}

#[test]
fn an_intake_batch_is_one_statement() {
    let changes = flood(0..16, now());
    let rows = lean(&changes, now()).expect("one statement");
    let counts = [
        rows.findings.len(),
        rows.groups.len(),
        rows.history.len(),
        rows.enqueue.len(),
        rows.enqueue_if_absent.len(),
        rows.audit.len(),
    ];
    assert_eq!(counts, [16, 16, 16, 16, 0, 16]);
}

/// Every change set one statement cannot write exactly as the transaction does.
#[test]
fn what_one_statement_cannot_write_exactly_goes_through_the_transaction() {
    type Edit = fn(&mut ChangeSet);
    let cases: [(&str, Edit); 10] = [
        ("a job's outcome", |c| {
            c.job_outcomes.push(JobOutcome::Requeued { id: 1 })
        }),
        ("an outbox write", |c| {
            c.outbox.push(OutboxWrite::Remove("e1".into()))
        }),
        ("a setting", |c| c.kv.push(("k".into(), "v".into()))),
        ("a group update", |c| {
            let GroupWrite::InsertIfAbsent(r) = c.groups[0].clone() else {
                unreachable!()
            };
            c.groups.push(GroupWrite::Update {
                record: r,
                expected_version: 0,
            });
        }),
        ("a finding twice", |c| {
            let again = c.findings[0].clone();
            c.findings.push(again);
        }),
        ("a group twice", |c| {
            let again = c.groups[0].clone();
            c.groups.push(again);
        }),
        ("a job twice, plain and if absent", |c| {
            let first = &c.jobs[0];
            let again = NewJob::if_absent(first.job.clone(), first.run_at);
            c.jobs.push(again);
        }),
        ("text holding NUL", |c| c.findings[0].fingerprint.push('\0')),
        ("an instant beyond the year 9999", |c| {
            c.jobs[0].run_at = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        }),
        ("an issue number beyond BIGINT", |c| {
            let GroupWrite::InsertIfAbsent(r) = &mut c.groups[0] else {
                unreachable!()
            };
            r.issue_number = Some(u64::MAX);
        }),
    ];
    assert!(lean(&flood(0..3, now()), now()).is_some());
    for (what, edit) in cases {
        let mut changes = flood(0..3, now());
        edit(&mut changes);
        assert!(lean(&changes, now()).is_none(), "{what}");
    }
}

/// Every row of Lever's intake tables, as JSON, without the columns the database numbers
/// (`id`, `seq`: the two schemas number their own rows), in an order both paths share.
async fn dump(store: &PostgresStore) -> serde_json::Value {
    let tables = [
        ("findings", "product_arn, finding_id"),
        ("groups", "group_key"),
        ("group_history", "seq"),
        ("jobs", "kind, subject, state, created_at"),
        ("audit", "seq"),
    ];
    let mut out = serde_json::Map::new();
    for (table, order) in tables {
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'id' - 'seq' ORDER BY {order}), '[]') \
             FROM {table} AS t"
        );
        let rows: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .unwrap();
        out.insert(table.to_string(), rows);
    }
    serde_json::Value::Object(out)
}

/// What the store holds before: three groups of a flood, one finding of them failing again
/// later, their jobs pending, one of them leased.
async fn seed(store: &PostgresStore) {
    let before = now() - chrono::Duration::minutes(5);
    let mut changes = flood(0..3, before);
    for n in [0, 2] {
        changes.jobs.push(NewJob::new(
            Job::NotifyFindings(GroupKey(changes.groups_keys()[n].clone())),
            before + chrono::Duration::hours(1),
        ));
    }
    sql::apply_tx(store.pool(), &(), changes, before)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE jobs SET lease_owner = 'worker-1', lease_expires = $1 \
         WHERE kind = 'open-issue' AND subject = $2",
    )
    .bind(now() + chrono::Duration::minutes(1))
    .bind(flood(1..2, before).groups_keys()[0].clone())
    .execute(store.pool())
    .await
    .unwrap();
}

trait Keys {
    fn groups_keys(&self) -> Vec<String>;
}
impl Keys for ChangeSet {
    fn groups_keys(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| common::group_write_key(g).0.clone())
            .collect()
    }
}

/// The batch written on top: two of the stored findings again (one of them changed), three
/// new ones; groups inserted again (nothing happens) and anew (their first history row);
/// jobs enqueued again (earlier: moved; leased: re-run; if absent: left alone) and anew.
fn batch() -> ChangeSet {
    let mut findings: Vec<Finding> = (1..6).map(|n| finding(n, Severity::High)).collect();
    findings[1].severity = Severity::Critical;
    findings[1].updated_at = Some("2026-12-01T00:00:00.000Z".into());
    let mut changes = planned(&findings, now());
    let key = |n: usize| GroupKey(flood(n..n + 1, now()).groups_keys()[0].clone());
    changes.jobs.extend([
        // Stored due in an hour: due now instead.
        NewJob::new(Job::NotifyFindings(key(0)), now()),
        // Not stored: inserted. Stored: left alone.
        NewJob::if_absent(Job::SyncGroup(key(4)), now()),
        NewJob::if_absent(Job::NotifyFindings(key(2)), now()),
    ]);
    changes.audit.push(AuditEntry {
        seq: 0,
        at: now(),
        actor: "test".into(),
        action: "noted".into(),
        group_key: None,
        issue: Some("acme/web#7".into()),
        source: None,
        detail: json!({"text": "NUL \u{0} is replaced", "n": 7}),
    });
    common::sorted_for_locking(&mut changes);
    changes
}

/// The one statement writes, row for row, what `sql::apply_in`'s transaction writes, on the
/// same stored state: the upserts' conflict clauses (a finding updated, a group left alone, a
/// pending job moved earlier or re-run when leased, an if-absent enqueue left alone), the
/// first history rows of the groups inserted only, instants to the microsecond, JSON with NUL
/// replaced.
#[tokio::test]
async fn one_statement_writes_what_the_transaction_writes() {
    let test = "store::postgres_lean::tests::one_statement_writes_what_the_transaction_writes";
    let Some((lean_store, url, lean_schema)) = schema(test).await else {
        return;
    };
    let (tx_store, _, tx_schema) = schema(test).await.unwrap();
    seed(&lean_store).await;
    seed(&tx_store).await;
    assert_eq!(dump(&lean_store).await, dump(&tx_store).await, "the seeds");
    let changes = batch();
    assert!(
        lean(&changes, now()).is_some(),
        "the batch is one statement"
    );
    apply(lean_store.pool(), &(), changes.clone(), now(), &[])
        .await
        .unwrap();
    sql::apply_tx(tx_store.pool(), &(), changes, now())
        .await
        .unwrap();
    let (written, expected) = (dump(&lean_store).await, dump(&tx_store).await);
    drop_schema(&url, &lean_schema).await;
    drop_schema(&url, &tx_schema).await;
    assert_eq!(written, expected);
    // And the batch did what it says (the comparison would pass with both paths writing
    // nothing).
    let count = |table: &str| written[table].as_array().unwrap().len();
    assert_eq!(
        [count("findings"), count("groups"), count("group_history")],
        [6, 6, 6]
    );
    let jobs = written["jobs"].as_array().unwrap();
    let job = |kind: &str, n: usize| {
        let subject = flood(n..n + 1, now()).groups_keys()[0].clone();
        jobs.iter()
            .find(|j| j["kind"] == kind && j["subject"] == subject.as_str())
            .unwrap_or_else(|| panic!("{kind} {subject}: {jobs:#?}"))
            .clone()
    };
    assert_eq!(job("open-issue", 1)["rerun"], true, "leased: re-run");
    assert_eq!(
        job("sync-group", 4)["state"],
        "pending",
        "if absent, and absent"
    );
    assert_eq!(
        job("notify-findings", 2)["run_at"],
        "2026-12-05T10:02:26.388041+00:00",
        "if absent, and present: left alone"
    );
    assert_eq!(job("open-issue", 0)["rerun"], false);
    assert_eq!(
        job("notify-findings", 0)["run_at"],
        "2026-12-05T09:07:26.388041+00:00",
        "moved earlier, rounded up to the microsecond as a job's run_at is"
    );
    let audit = written["audit"].as_array().unwrap();
    assert_eq!(
        audit.last().unwrap()["detail"]["text"],
        "NUL \u{FFFD} is replaced"
    );
}

/// The statement commits on its own, all or nothing: when one of its writes fails (here the
/// audit's, against a unique index the test adds), none of the others is kept.
#[tokio::test]
async fn a_failing_write_keeps_nothing_of_the_statement() {
    let test = "store::postgres_lean::tests::a_failing_write_keeps_nothing_of_the_statement";
    let Some((store, url, name)) = schema(test).await else {
        return;
    };
    sqlx::query("CREATE UNIQUE INDEX audit_one_action ON audit (action)")
        .execute(store.pool())
        .await
        .unwrap();
    let changes = flood(0..4, now());
    assert!(lean(&changes, now()).is_some());
    let result = apply(store.pool(), &(), changes, now(), &[]).await;
    let written = dump(&store).await;
    drop_schema(&url, &name).await;
    assert!(result.is_err(), "{result:?}");
    for table in ["findings", "groups", "group_history", "jobs", "audit"] {
        assert_eq!(written[table], json!([]), "{table}");
    }
}

/// Through the store: an intake batch of new findings on PostgreSQL is stored whole, and the
/// statement tells the ids of its new issues' jobs, the ids the store's read finds after it.
#[tokio::test]
async fn the_store_writes_an_intake_batch_and_tells_its_job_ids() {
    let test =
        "store::postgres_lean::tests::the_store_writes_an_intake_batch_and_tells_its_job_ids";
    let Some((store, url, name)) = schema(test).await else {
        return;
    };
    let jobs: Vec<Job> = flood(0..16, now())
        .jobs
        .iter()
        .map(|j| j.job.clone())
        .collect();
    let told = store
        .apply_then_pending_ids(flood(0..16, now()), now(), &jobs)
        .await
        .unwrap()
        .unwrap();
    let read = store.pending_job_ids(&jobs).await.unwrap();
    // A job the batch does not enqueue: the statement cannot tell, the store reads.
    let mut asked = jobs[..2].to_vec();
    asked.push(Job::SyncGroup(GroupKey("never-enqueued".into())));
    let direct = apply(store.pool(), &(), flood(16..18, now()), now(), &asked)
        .await
        .unwrap();
    let through_store = store
        .apply_then_pending_ids(flood(18..20, now()), now(), &asked)
        .await
        .unwrap()
        .unwrap();
    // The statement itself tells the ids of its own enqueues.
    let own: Vec<Job> = flood(20..22, now())
        .jobs
        .iter()
        .map(|j| j.job.clone())
        .collect();
    let own_told = apply(store.pool(), &(), flood(20..22, now()), now(), &own)
        .await
        .unwrap();
    let own_read = store.pending_job_ids(&own).await.unwrap();
    let written = dump(&store).await;
    drop_schema(&url, &name).await;
    for table in ["findings", "groups", "group_history", "jobs", "audit"] {
        assert_eq!(written[table].as_array().unwrap().len(), 22, "{table}");
    }
    assert_eq!(own_told, Some(own_read));
    assert!(told.iter().all(Option::is_some), "{told:?}");
    assert_eq!(told, read);
    assert_eq!(direct, None);
    assert_eq!(through_store, [read[0], read[1], None]);
}

/// The one statement of an untracked delivery batch: the tracked-issue query on `$1`, then
/// `INSERT_DELIVERY`'s row repeated from `$2`, its `VALUES` yielding nothing when a pair is
/// tracked.
#[test]
fn the_delivery_statement_is_the_padded_insert_behind_the_tracked_question() {
    use crate::store::dialect::Dialect;
    let one = deliveries::INSERT_UNLESS_TRACKED.sql(1);
    assert_eq!(
        one,
        format!(
            "WITH tracked AS ({}), ins AS (INSERT INTO deliveries (id, event, body_sha256, body, \
             received_at) SELECT * FROM (VALUES ($2, $3, $4, $5, $6)) AS v WHERE NOT EXISTS \
             (SELECT 1 FROM tracked) ON CONFLICT DO NOTHING RETURNING id) SELECT k, NULL::text \
             AS id FROM tracked UNION ALL SELECT NULL::bigint, id FROM ins",
            sqlx::Postgres::SELECT_TRACKED_ISSUES
        )
    );
    let many = deliveries::INSERT_UNLESS_TRACKED.sql(64);
    let numbers: Vec<usize> = rows::placeholders(many).map(|(_, n)| n).collect();
    assert_eq!(numbers.len(), 1 + 64 * 5);
    assert_eq!(numbers.iter().max(), Some(&(1 + 64 * 5)));
    assert!(many.contains("($317, $318, $319, $320, $321))"), "{many}");
}

/// A delivery of the test batches: `issue` names acme/web#n.
fn delivery<'a>(
    id: &'a str,
    sha: &'a [u8; 32],
    issue: Option<u64>,
) -> crate::store::NewDelivery<'a> {
    crate::store::NewDelivery {
        id,
        event: "issues.labeled",
        body: b"{\"action\":\"labeled\"}",
        body_sha256: sha,
        issue: issue.map(|number| crate::store::IssueRef {
            repo: "ACME/web",
            number,
        }),
        received_at: now(),
    }
}

/// The statement writes a batch none of whose deliveries is tracked (duplicates within it and
/// before it told apart, no body kept) and writes nothing of a batch with a tracked one, telling
/// which; the store then records that batch in a transaction, the tracked body and job with it.
#[tokio::test]
async fn an_untracked_batch_is_one_statement_and_a_tracked_one_writes_nothing_there() {
    use crate::store::DeliveryOutcome::{Duplicate, Tracked, Untracked};
    use deliveries::Unless;
    let test = "store::postgres_lean::tests::an_untracked_batch_is_one_statement_and_a_tracked_one_writes_nothing_there";
    let Some((store, url, name)) = schema(test).await else {
        return;
    };
    store.apply(flood(0..1, now()), now()).await.unwrap();
    sqlx::query("UPDATE groups SET repo = 'acme/web', issue_number = 7")
        .execute(store.pool())
        .await
        .unwrap();
    let (a, b, c, d, t) = ([1; 32], [2; 32], [3; 32], [6; 32], [4; 32]);
    let untracked = [
        delivery("github:a", &a, Some(1)),
        delivery("github:b", &b, None),
        delivery("github:a", &c, Some(2)),
        delivery("github:c", &b, Some(3)),
        delivery("github:d", &d, Some(4)),
    ];
    let mut conn = store.pool().acquire().await.unwrap();
    let firsts = sql::first_occurrences(&untracked);
    let first = deliveries::insert_unless_tracked(&mut conn, &untracked, &firsts).await;
    let again = deliveries::insert_unless_tracked(&mut conn, &untracked[..1], &[0]).await;
    let with_tracked = [
        delivery("github:e", &[5; 32], Some(1)),
        delivery("github:f", &t, Some(7)),
    ];
    let refused = deliveries::insert_unless_tracked(&mut conn, &with_tracked, &[0, 1]).await;
    let stored_before: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let recorded = store.record_deliveries(&with_tracked).await;
    let bodies: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, body FROM deliveries ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let jobs = store.jobs(None).await.unwrap();
    drop_schema(&url, &name).await;
    assert_eq!(
        first.unwrap(),
        Unless::Written(vec![Untracked, Untracked, Duplicate, Duplicate, Untracked]),
        "the first of an id or a body wins"
    );
    assert_eq!(again.unwrap(), Unless::Written(vec![Duplicate]));
    assert_eq!(refused.unwrap(), Unless::Tracked(vec![false, true]));
    assert_eq!(stored_before, 3, "nothing of the tracked batch was written");
    assert_eq!(recorded.unwrap(), [Untracked, Tracked]);
    let body = |id: &str| bodies.iter().find(|(i, _)| i == id).unwrap().1.clone();
    assert_eq!(bodies.len(), 5);
    assert_eq!(body("github:a"), None);
    assert_eq!(body("github:e"), None);
    assert_eq!(
        body("github:f").as_deref(),
        Some(&b"{\"action\":\"labeled\"}"[..])
    );
    let events: Vec<&Job> = jobs
        .iter()
        .map(|j| &j.job)
        .filter(|j| matches!(j, Job::GithubEvent(_)))
        .collect();
    assert_eq!(
        events,
        [&Job::GithubEvent(crate::store::DeliveryId(
            "github:f".into()
        ))]
    );
}
