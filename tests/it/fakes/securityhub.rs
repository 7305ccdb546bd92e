//! A stateful fake of AWS Security Hub (rest-json), served by axum on 127.0.0.1:0.
//! Operations: GetFindings (`POST /findings`), BatchUpdateFindings
//! (`PATCH /findings/batchupdate`), BatchImportFindings (`POST /findings/import`) on ASFF
//! findings, and GetFindingsV2 (`POST /findingsv2`), BatchUpdateFindingsV2
//! (`PATCH /findingsv2/batchupdatev2`) on OCSF findings (Security Hub v2, see `v2.rs`).

mod filters;
mod ops;
mod v2;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::fakes::awsmodel;

/// Region the fake serves and the SDK client must sign for.
pub const REGION: &str = "us-east-1";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct ShRequest {
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// Operation name from the model (`GetFindings`, …), when the route matched one.
    pub operation: Option<String>,
    pub body: Option<Value>,
    /// The `Authorization` header started with `AWS4-HMAC-SHA256` and named
    /// `…/us-east-1/securityhub/aws4_request`.
    pub signed: bool,
    pub status: u16,
    /// `x-amzn-ErrorType` of an error answer.
    pub error_type: Option<String>,
}

/// A request AWS would reject (or a response of the fake that breaks the model).
#[derive(Debug, Clone)]
pub struct ShViolation {
    pub request: String,
    pub problem: String,
}

impl std::fmt::Display for ShViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.request, self.problem)
    }
}

/// An injected error answer.
#[derive(Debug, Clone)]
pub struct ShFault {
    /// Operation name or `*`.
    pub operation: String,
    pub status: u16,
    /// `x-amzn-ErrorType`, e.g. `LimitExceededException`.
    pub error_type: String,
    pub message: String,
    pub remaining: u32,
}

#[derive(Default)]
struct State {
    clock_offset: TimeDelta,
    /// (ProductArn, Id) -> finding, plus insertion order for ties.
    findings: BTreeMap<(String, String), (u64, Value)>,
    /// Security Hub v2: (cloud.account.uid, finding_info.uid, metadata.product.uid) -> OCSF
    /// finding, with the same insertion order counter.
    v2: BTreeMap<v2::V2Key, (u64, Value)>,
    next_seq: u64,
    faults: Vec<ShFault>,
    /// Finding Id -> (ErrorCode, remaining times) forced into UnprocessedFindings.
    forced_unprocessed: BTreeMap<String, (String, u32)>,
    log: Vec<ShRequest>,
    violations: Vec<ShViolation>,
    response_violations: Vec<ShViolation>,
    unsupported: Vec<String>,
    events: Vec<Value>,
    home_account: Option<String>,
    /// Random faults on a share of calls ([`FakeSecurityHub::chaos`]).
    chaos: Option<Chaos>,
}

/// Seeded random faults: a share of calls throttled or failed, a share of the findings of
/// BatchUpdateFindings left unprocessed.
pub(crate) struct Chaos {
    rng: rand::rngs::StdRng,
    /// Percent of calls answered with an error, and of findings left unprocessed.
    percent: u32,
}

impl Chaos {
    pub(crate) fn hit(&mut self) -> bool {
        use rand::Rng;
        self.rng.random_range(0..100) < self.percent
    }
    fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
        use rand::Rng;
        &of[self.rng.random_range(0..of.len())]
    }
}

/// The model's errors of GetFindings and BatchUpdateFindings a busy Security Hub answers
/// (`service-2.json`): `LimitExceededException` (429, the operations' declared throttling
/// error), `ThrottlingException` (429, the service's request-rate error) and
/// `InternalException` (500). `TooManyRequestsException` is not in the model.
const CHAOS_ERRORS: &[(u16, &str, &str)] = &[
    (429, "LimitExceededException", "Rate exceeded"),
    (429, "ThrottlingException", "Rate exceeded"),
    (500, "InternalException", "Internal server error"),
];

/// `UnprocessedFindings` error codes a busy Security Hub gives (documented codes).
pub(crate) const CHAOS_UNPROCESSED: &[&str] = &["ConcurrentUpdateError", "InternalFailure"];

impl State {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    fn note_unsupported(&mut self, what: &str) {
        if !self.unsupported.iter().any(|u| u == what) {
            self.unsupported.push(what.to_string());
        }
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

struct Shared {
    state: Mutex<State>,
    url: String,
}

/// Handle to a running fake Security Hub. Cheap to clone.
#[derive(Clone)]
pub struct FakeSecurityHub {
    shared: Arc<Shared>,
}

impl FakeSecurityHub {
    /// Bind 127.0.0.1:0 and serve on the current tokio runtime.
    pub async fn start() -> FakeSecurityHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Security Hub");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            url: format!("http://{addr}"),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        FakeSecurityHub { shared }
    }

    /// Endpoint URL, for `aws_sdk_securityhub::config::Builder::endpoint_url` or
    /// `AWS_ENDPOINT_URL_SECURITYHUB`.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// A real SDK client for this fake: region `us-east-1`, static test credentials, retries
    /// disabled (so injected faults are seen exactly once).
    pub fn client(&self) -> aws_sdk_securityhub::Client {
        let conf = self
            .config_builder()
            .retry_config(aws_sdk_securityhub::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_securityhub::Client::from_conf(conf)
    }

    /// SDK config builder pointed at this fake (region, test credentials, endpoint), for callers
    /// that want their own retry or timeout settings.
    pub fn config_builder(&self) -> aws_sdk_securityhub::config::Builder {
        let creds = aws_sdk_securityhub::config::Credentials::new(
            "AKIAFAKEFAKEFAKEFAKE",
            "fake-secret-access-key",
            None,
            None,
            "lever-fake",
        );
        aws_sdk_securityhub::Config::builder()
            .behavior_version(aws_sdk_securityhub::config::BehaviorVersion::latest())
            .region(aws_sdk_securityhub::config::Region::new(REGION))
            .credentials_provider(creds)
            .endpoint_url(self.url())
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    // ---- seeding and inspection ---------------------------------------------------------------

    /// Store findings as BatchImportFindings would, without validation (real ASFF often breaks
    /// the model). Accepts single findings, arrays, EventBridge envelopes (`detail.findings`)
    /// and GetFindings responses (`Findings`). Emits Imported events (drain them if unwanted).
    /// OCSF findings (`class_uid` and `metadata`) go to the Security Hub v2 store, served by
    /// GetFindingsV2, and emit `Findings Imported V2` events.
    /// Returns how many. A seeded finding that breaks the model is still served by GetFindings
    /// but shows up in `response_violations()` (AWS would never return it): seed model-valid
    /// findings for anything read back through the SDK.
    pub fn seed(&self, value: Value) -> usize {
        let findings = unwrap_findings(value);
        let n = findings.len();
        let mut st = self.st();
        for f in findings {
            if v2::is_ocsf(&f) {
                v2::upsert(&mut st, f);
            } else {
                upsert(&mut st, f);
            }
        }
        n
    }

    /// The stored Security Hub v2 finding with this `finding_info.uid`.
    pub fn finding_v2(&self, uid: &str) -> Option<Value> {
        self.st()
            .v2
            .values()
            .find(|(_, f)| f["finding_info"]["uid"].as_str() == Some(uid))
            .map(|(_, f)| f.clone())
    }

    /// All stored Security Hub v2 findings, in import order.
    pub fn findings_v2(&self) -> Vec<Value> {
        let st = self.st();
        let mut v: Vec<&(u64, Value)> = st.v2.values().collect();
        v.sort_by_key(|(s, _)| *s);
        v.into_iter().map(|(_, f)| f.clone()).collect()
    }

    /// Seed from a JSON file (see [`FakeSecurityHub::seed`]).
    pub fn seed_file(&self, path: &std::path::Path) -> usize {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self.seed(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    /// The stored finding with this `Id` (any product).
    pub fn finding(&self, id: &str) -> Option<Value> {
        self.st()
            .findings
            .values()
            .find(|(_, f)| f["Id"].as_str() == Some(id))
            .map(|(_, f)| f.clone())
    }

    /// All stored findings, in the fake's default order.
    pub fn findings(&self) -> Vec<Value> {
        let st = self.st();
        filters::default_order(st.findings.values().map(|(s, f)| (*s, f)).collect())
            .into_iter()
            .cloned()
            .collect()
    }

    /// Use this account in the `account` field of Imported events (default: the finding's
    /// `AwsAccountId`; an aggregator would put its own).
    pub fn set_home_account(&self, account: &str) {
        self.st().home_account = Some(account.to_string());
    }

    /// Move the fake's clock (Note.UpdatedAt, ProcessedAt, event time, DateRange filters).
    pub fn advance_clock(&self, by: TimeDelta) {
        self.st().clock_offset += by;
    }

    /// Take the "Security Hub Findings - Imported" EventBridge events produced so far (one per
    /// changed finding, shaped like `conformance/asff/findings/asr-layer-test-CIS-1.3.json`).
    pub fn drain_events(&self) -> Vec<Value> {
        std::mem::take(&mut self.st().events)
    }

    // ---- faults -------------------------------------------------------------------------------

    /// Answer the next `times` calls of `operation` (`"*"` = any) with this error.
    pub fn fail_next(
        &self,
        operation: &str,
        status: u16,
        error_type: &str,
        message: &str,
        times: u32,
    ) {
        self.st().faults.push(ShFault {
            operation: operation.to_string(),
            status,
            error_type: error_type.to_string(),
            message: message.to_string(),
            remaining: times,
        });
    }

    /// Throttle the next `times` calls: 429 `LimitExceededException` (the model's throttling
    /// error for these operations; `TooManyRequestsException` is not in the model).
    pub fn throttle_next(&self, operation: &str, times: u32) {
        self.fail_next(
            operation,
            429,
            "LimitExceededException",
            "Rate exceeded",
            times,
        );
    }

    /// Answer the next `times` calls with 503 `ServiceUnavailableException`.
    pub fn unavailable_next(&self, operation: &str, times: u32) {
        self.fail_next(
            operation,
            503,
            "ServiceUnavailableException",
            "Service Unavailable",
            times,
        );
    }

    /// Put finding `id` into `UnprocessedFindings` of the next `times` BatchUpdateFindings calls
    /// that name it, with `error_code` (e.g. `ConcurrentUpdateError`, `InternalFailure`); the
    /// message is AWS's documented one for that code.
    pub fn force_unprocessed(&self, id: &str, error_code: &str, times: u32) {
        self.st()
            .forced_unprocessed
            .insert(id.to_string(), (error_code.to_string(), times));
    }

    /// From now on `percent` % of the calls (seeded by `seed`, so a run replays) are answered
    /// with a throttling or internal error of the model, and `percent` % of the findings of
    /// each other BatchUpdateFindings call are left in `UnprocessedFindings`
    /// (`ConcurrentUpdateError`, `InternalFailure`). Until [`FakeSecurityHub::calm`].
    pub fn chaos(&self, seed: u64, percent: u32) {
        use rand::SeedableRng;
        self.st().chaos = Some(Chaos {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            percent,
        });
    }

    /// Stops [`FakeSecurityHub::chaos`].
    pub fn calm(&self) {
        self.st().chaos = None;
    }

    // ---- observation --------------------------------------------------------------------------

    pub fn requests(&self) -> Vec<ShRequest> {
        self.st().log.clone()
    }

    /// Number of calls of `operation`.
    pub fn count(&self, operation: &str) -> usize {
        self.st()
            .log
            .iter()
            .filter(|r| r.operation.as_deref() == Some(operation))
            .count()
    }

    /// Requests AWS would reject (they were answered 400 InvalidInputException).
    pub fn violations(&self) -> Vec<ShViolation> {
        self.st().violations.clone()
    }

    /// Responses of the fake that break the model (a bug in the fake).
    pub fn response_violations(&self) -> Vec<ShViolation> {
        self.st().response_violations.clone()
    }

    /// Filters the app used that the fake does not implement (it answered as if they matched
    /// everything): a test relying on them would be meaningless.
    pub fn unsupported(&self) -> Vec<String> {
        self.st().unsupported.clone()
    }

    /// Panic when there is any violation, response violation or unsupported filter. Without
    /// `../shared/conformance` the model checks do not run: prints a `SKIPPED:` line.
    pub fn assert_conformant(&self) {
        if awsmodel::model().is_none() {
            crate::fakes::require_conformance(
                "FakeSecurityHub::assert_conformant (model validation)",
            );
        }
        let st = self.st();
        let all: Vec<String> = st
            .violations
            .iter()
            .map(|v| format!("request  {v}"))
            .chain(
                st.response_violations
                    .iter()
                    .map(|v| format!("response {v}")),
            )
            .chain(st.unsupported.iter().map(|u| format!("unsupported {u}")))
            .collect();
        assert!(
            all.is_empty(),
            "Security Hub violations:\n{}",
            all.join("\n")
        );
    }
}

/// Findings inside a seed value.
fn unwrap_findings(value: Value) -> Vec<Value> {
    match value {
        Value::Array(a) => a.into_iter().flat_map(unwrap_findings).collect(),
        Value::Object(ref o) if o.contains_key("detail") => {
            unwrap_findings(o["detail"]["findings"].clone())
        }
        Value::Object(ref o) if o.contains_key("Findings") => {
            unwrap_findings(o["Findings"].clone())
        }
        v @ Value::Object(_) => vec![v],
        _ => vec![],
    }
}

/// Insert or replace a finding like BatchImportFindings: defaults for Workflow, RecordState,
/// WorkflowState, ProcessedAt; fields owned by BatchUpdateFindings (Note, UserDefinedFields,
/// VerificationState, Workflow) keep their stored values once set.
fn upsert(st: &mut State, mut f: Value) {
    let key = (
        f["ProductArn"].as_str().unwrap_or_default().to_string(),
        f["Id"].as_str().unwrap_or_default().to_string(),
    );
    let now = iso(st.now());
    if let Some((_, old)) = st.findings.get(&key) {
        for owned in ["Note", "UserDefinedFields", "VerificationState", "Workflow"] {
            if let Some(v) = old.get(owned) {
                f[owned] = v.clone();
            }
        }
        // Security Hub's own workflow changes for control findings: a finding that passes
        // again is RESOLVED (unless suppressed); a RESOLVED one that fails again is NEW.
        let compliance = |v: &Value| v["Compliance"]["Status"].as_str().map(str::to_string);
        let (was, now) = (compliance(old), compliance(&f));
        let status = f["Workflow"]["Status"]
            .as_str()
            .unwrap_or("NEW")
            .to_string();
        if was.is_some() && was != now {
            if now.as_deref() == Some("PASSED") && matches!(status.as_str(), "NEW" | "NOTIFIED") {
                f["Workflow"] = json!({"Status": "RESOLVED"});
            } else if was.as_deref() == Some("PASSED") && status == "RESOLVED" {
                f["Workflow"] = json!({"Status": "NEW"});
            }
        }
    }
    if f.get("Workflow").is_none() {
        f["Workflow"] = json!({"Status": "NEW"});
    }
    if f.get("RecordState").is_none() {
        f["RecordState"] = json!("ACTIVE");
    }
    if f.get("WorkflowState").is_none() {
        f["WorkflowState"] = json!("NEW");
    }
    f["ProcessedAt"] = json!(now);
    let seq = match st.findings.get(&key) {
        Some((s, _)) => *s,
        None => {
            st.next_seq += 1;
            st.next_seq
        }
    };
    emit_event(st, &f);
    st.findings.insert(key, (seq, f));
}

fn emit_event(st: &mut State, f: &Value) {
    let product = f["ProductArn"].as_str().unwrap_or_default();
    let id = f["Id"].as_str().unwrap_or_default();
    let region = f["Region"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            product
                .split(':')
                .nth(3)
                .filter(|r| !r.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| REGION.to_string());
    let account = st
        .home_account
        .clone()
        .unwrap_or_else(|| f["AwsAccountId"].as_str().unwrap_or_default().to_string());
    let time = st.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    st.events.push(json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": account,
        "time": time,
        "region": region,
        "resources": [format!("{product}/{id}")],
        "detail": {"findings": [f]},
    }));
}

struct Answer {
    status: u16,
    body: Value,
    error_type: Option<String>,
}

fn error(status: u16, error_type: &str, message: &str) -> Answer {
    Answer {
        status,
        body: json!({"__type": error_type, "Code": error_type, "Message": message, "message": message}),
        error_type: Some(error_type.to_string()),
    }
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        body,
        error_type: None,
    }
}

fn signed(auth: Option<&str>) -> bool {
    auth.is_some_and(|a| {
        a.starts_with("AWS4-HMAC-SHA256 ")
            && a.contains(&format!("/{REGION}/securityhub/aws4_request"))
            && a.contains("Signature=")
    })
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();

    let mut st = shared.state.lock().unwrap();
    let seq = st.log.len();
    let label = format!("#{seq} {method} {path}");
    let model = awsmodel::model();
    let operation = match model {
        Some(m) => m.operation_for(&method, &path),
        None => match (method.as_str(), path.as_str()) {
            ("POST", "/findings") => Some("GetFindings".to_string()),
            ("PATCH", "/findings/batchupdate") => Some("BatchUpdateFindings".to_string()),
            ("POST", "/findings/import") => Some("BatchImportFindings".to_string()),
            ("POST", "/findingsv2") => Some("GetFindingsV2".to_string()),
            ("PATCH", "/findingsv2/batchupdatev2") => Some("BatchUpdateFindingsV2".to_string()),
            _ => None,
        },
    };
    let is_signed = signed(auth.as_deref());

    let answer = 'answer: {
        let Some(op) = operation.clone() else {
            st.violations.push(ShViolation {
                request: label.clone(),
                problem: "no Security Hub operation at this method and path".into(),
            });
            break 'answer error(404, "UnknownOperationException", "Unknown operation");
        };
        if !is_signed {
            st.violations.push(ShViolation {
                request: label.clone(),
                problem: format!("Authorization is not SigV4 for {REGION}/securityhub: {auth:?}"),
            });
            break 'answer error(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
        }
        if let Some(f) = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.operation == "*" || f.operation == op))
        {
            f.remaining -= 1;
            let a = error(f.status, &f.error_type.clone(), &f.message.clone());
            st.faults.retain(|f| f.remaining > 0);
            break 'answer a;
        }
        if let Some(c) = st.chaos.as_mut()
            && c.hit()
        {
            let (status, error_type, message) = *c.pick(CHAOS_ERRORS);
            break 'answer error(status, error_type, message);
        }
        let Some(body) = body.clone().or_else(|| bytes.is_empty().then(|| json!({}))) else {
            st.violations.push(ShViolation {
                request: label.clone(),
                problem: "body is not JSON".into(),
            });
            break 'answer error(
                400,
                "InvalidInputException",
                "Request body is not valid JSON",
            );
        };
        let mut problems = model
            .map(|m| m.validate_input(&op, &body))
            .unwrap_or_default();
        problems.extend(awsmodel::check_documented_limits(&op, &body));
        if !problems.is_empty() {
            for p in &problems {
                st.violations.push(ShViolation {
                    request: format!("{label} ({op})"),
                    problem: p.clone(),
                });
            }
            let first = &problems[0];
            let param = first
                .strip_prefix("data.")
                .and_then(|s| s.split([' ', '[']).next())
                .unwrap_or("request");
            // The V2 operations declare ValidationException, the ASFF ones InvalidInputException.
            let error_type = if op.ends_with("V2") {
                "ValidationException"
            } else {
                "InvalidInputException"
            };
            break 'answer error(
                400,
                error_type,
                &format!("Invalid parameter '{param}'. {first}"),
            );
        }
        match op.as_str() {
            "GetFindings" => ops::get_findings(&mut st, &body),
            "BatchUpdateFindings" => ops::batch_update(&mut st, &body),
            "BatchImportFindings" => ops::batch_import(&mut st, &body),
            "GetFindingsV2" => v2::get_findings(&mut st, &body),
            "BatchUpdateFindingsV2" => v2::batch_update(&mut st, &body),
            other => error(
                400,
                "InvalidInputException",
                &format!("{other} is not implemented by the fake"),
            ),
        }
    };

    if answer.status == 200
        && let (Some(m), Some(op)) = (model, operation.as_deref())
    {
        for p in m.validate_output(op, &answer.body) {
            st.response_violations.push(ShViolation {
                request: label.clone(),
                problem: p,
            });
        }
    }
    st.log.push(ShRequest {
        seq,
        method,
        path,
        operation,
        body,
        signed: is_signed,
        status: answer.status,
        error_type: answer.error_type.clone(),
    });
    drop(st);

    let mut b = Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
    if let Some(t) = &answer.error_type {
        b = b.header("x-amzn-errortype", t.as_str());
    }
    b.body(Body::from(serde_json::to_vec(&answer.body).unwrap()))
        .unwrap()
}
