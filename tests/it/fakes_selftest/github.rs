//! Fake GitHub driven by the real octocrab client (and reqwest where octocrab cannot say it).

use octocrab::models::InstallationId;
use octocrab::params;
use serde_json::{Value, json};

use crate::fakes::github::{
    FakeGitHub, FaultKind, OTHER_TEST_PRIVATE_KEY_PEM, TEST_APP_ID, TEST_APP_PRIVATE_KEY_PEM,
    TokenKind,
};
use crate::fakes::require_conformance;

const INST: u64 = 7;
const REPO: &str = "acme/payments";

/// Org `acme` with the App installed (id 7), private repo `acme/payments`, collaborators
/// alice (write) and bob (read), plain user mallory, team `acme/security`.
async fn setup() -> FakeGitHub {
    let fake = FakeGitHub::start_with_test_app().await;
    fake.add_installation(INST, "acme");
    fake.add_repo(REPO, true, Some(INST));
    fake.add_repo("acme/public-site", false, Some(INST));
    fake.add_repo("other/elsewhere", true, None);
    fake.add_collaborator(REPO, "alice", "write");
    fake.add_collaborator(REPO, "bob", "read");
    fake.add_user("mallory");
    fake.add_team_member("acme", "security", "alice", "active");
    fake.add_team_member("acme", "security", "carol", "pending");
    fake
}

fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

fn message_of(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => source.message.clone(),
        other => other.to_string(),
    }
}

fn jwt(key_pem: &str, claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn app_jwt_installation_and_token() {
    let fake = setup().await;
    let app = fake.app_client();

    let me = app.apps().get().await.expect("GET /app");
    assert_eq!(me.id.0, TEST_APP_ID);

    let inst = app
        .apps()
        .get_repository_installation("acme", "payments")
        .await
        .expect("GET /repos/{o}/{r}/installation");
    assert_eq!(inst.id.0, INST);

    let err = app
        .apps()
        .get_repository_installation("other", "elsewhere")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");

    let installs = app
        .apps()
        .installations()
        .send()
        .await
        .expect("list installations");
    assert_eq!(installs.items.len(), 1);

    let client = app.installation(InstallationId(INST)).unwrap();
    let repo = client
        .repos("acme", "payments")
        .get()
        .await
        .expect("GET repo");
    assert_eq!(repo.full_name.as_deref(), Some(REPO));
    assert_eq!(repo.private, Some(true));

    assert_eq!(fake.tokens_issued().len(), 1);
    let reqs = fake.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.path == format!("/app/installations/{INST}/access_tokens"))
        .expect("token request");
    assert_eq!(token_req.token, TokenKind::AppJwt);
    assert_eq!(token_req.status, 201);
    let repo_req = reqs
        .iter()
        .find(|r| r.path == "/repos/acme/payments")
        .unwrap();
    assert_eq!(
        repo_req.token,
        TokenKind::Installation {
            installation_id: INST
        }
    );

    // The App JWT is not accepted on repository endpoints.
    let err = app.repos("acme", "payments").get().await.unwrap_err();
    assert_eq!(status_of(&err), Some(403), "{err}");
    fake.assert_conformant();
}

#[tokio::test]
async fn bad_jwts_are_rejected_like_github() {
    let fake = setup().await;
    let http = reqwest::Client::new();
    let url = format!("{}/app", fake.url());
    let n = now();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "garbage",
            "not-a-jwt".into(),
            401,
            "A JSON web token could not be decoded",
        ),
        (
            "wrong key",
            jwt(
                OTHER_TEST_PRIVATE_KEY_PEM,
                json!({"iss": TEST_APP_ID, "iat": n - 60, "exp": n + 540}),
            ),
            401,
            "A JSON web token could not be decoded",
        ),
        (
            "expired",
            jwt(
                TEST_APP_PRIVATE_KEY_PEM,
                json!({"iss": TEST_APP_ID, "iat": n - 900, "exp": n - 300}),
            ),
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            "exp - iat > 10 min",
            jwt(
                TEST_APP_PRIVATE_KEY_PEM,
                json!({"iss": TEST_APP_ID, "iat": n - 60, "exp": n + 1200}),
            ),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            "no iat",
            jwt(
                TEST_APP_PRIVATE_KEY_PEM,
                json!({"iss": TEST_APP_ID, "exp": n + 300}),
            ),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            "unknown app",
            jwt(
                TEST_APP_PRIVATE_KEY_PEM,
                json!({"iss": 99, "iat": n - 60, "exp": n + 540}),
            ),
            404,
            "Integration not found",
        ),
    ];
    for (what, token, status, message) in cases {
        let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], message, "{what}");
        assert_eq!(
            body["documentation_url"], "https://docs.github.com/rest",
            "{what}"
        );
    }
    // iss as a string is accepted, as GitHub does.
    let ok = jwt(
        TEST_APP_PRIVATE_KEY_PEM,
        json!({"iss": TEST_APP_ID.to_string(), "iat": n - 60, "exp": n + 540}),
    );
    let resp = http.get(&url).bearer_auth(ok).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // octocrab signing with the wrong key.
    let key =
        octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(OTHER_TEST_PRIVATE_KEY_PEM.as_bytes())
            .unwrap();
    let wrong = octocrab::Octocrab::builder()
        .base_uri(fake.url())
        .unwrap()
        .app(octocrab::models::AppId(TEST_APP_ID), key)
        .build()
        .unwrap();
    let err = wrong.apps().get().await.unwrap_err();
    assert_eq!(status_of(&err), Some(401));
    assert_eq!(message_of(&err), "A JSON web token could not be decoded");
    let err = wrong
        .installation(InstallationId(INST))
        .unwrap()
        .issues("acme", "payments")
        .get(1)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err}");
    assert_eq!(fake.tokens_issued().len(), 0);
    fake.assert_conformant();
}

#[tokio::test]
async fn installation_tokens_missing_unknown_expired_and_out_of_scope() {
    let fake = setup().await;
    let http = reqwest::Client::new();
    let issues_url = format!("{}/repos/acme/payments/issues", fake.url());

    // No token: a private repo is invisible, a public one readable, writes need auth.
    let r = http.get(&issues_url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/repos/acme/public-site/issues", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/repos/acme/public-site/issues", fake.url()))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Requires authentication"
    );

    // A token the fake never issued.
    let r = http
        .get(&issues_url)
        .header("authorization", "token ghs_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert_eq!(body["documentation_url"], "https://docs.github.com/rest");

    // A valid token, both `token` and `Bearer` schemes.
    let token = fake.mint_installation_token(INST);
    for scheme in ["token", "Bearer"] {
        let r = http
            .get(&issues_url)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    // Not covered by the installation: 404, as GitHub hides it.
    let r = http
        .get(format!("{}/repos/other/elsewhere/issues", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Expired by the test clock.
    fake.advance_clock(chrono::TimeDelta::minutes(61));
    let r = http
        .get(&issues_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn octocrab_recovers_from_an_expired_installation_token() {
    let fake = setup().await;
    let client = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    client
        .issues("acme", "payments")
        .list()
        .send()
        .await
        .expect("first call");
    assert_eq!(fake.tokens_issued().len(), 1);
    // octocrab still believes its token is valid (it uses the real clock); the fake does not.
    fake.advance_clock(chrono::TimeDelta::minutes(61));
    client
        .issues("acme", "payments")
        .list()
        .send()
        .await
        .expect("after expiry");
    assert_eq!(
        fake.tokens_issued().len(),
        2,
        "octocrab re-minted after a 401"
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&401), "{statuses:?}");
    fake.assert_conformant();
}

#[tokio::test]
async fn issue_create_labels_assignees_comments_events() {
    let fake = setup().await;
    fake.add_label(REPO, "security-finding", "d73a4a", Some("Opened by Lever"));
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");

    let issue = issues
        .create("S3.1: bucket is public")
        .body("<!-- lever:group=abc -->\nDetails")
        .labels(vec!["security-finding".to_string(), "sev:high".to_string()])
        .assignees(vec!["alice".to_string()])
        .send()
        .await
        .expect("create issue");
    assert_eq!(issue.number, 1);
    assert_eq!(issue.user.login, "lever-test[bot]");
    let names: Vec<&str> = issue.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["security-finding", "sev:high"]);
    assert_eq!(
        issue
            .assignees
            .iter()
            .map(|a| a.login.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    // The unknown label was created in the repository, as GitHub does.
    let created = issues
        .get_label("sev:high")
        .await
        .expect("label created implicitly");
    assert_eq!(created.color, "ededed");

    // Create-label on an existing label: 422 already_exists.
    let err = issues
        .create_label("security-finding", "ffffff", "dup")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(422));
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.errors.as_ref().unwrap()[0]["code"], "already_exists")
        }
        other => panic!("{other}"),
    }
    issues
        .create_label("cto-approved", "0e8a16", "Exception approved")
        .await
        .expect("new label");

    // Labels: add, remove, remove-absent → 404.
    let labels = issues
        .add_labels(1, &["cto-approved".to_string()])
        .await
        .unwrap();
    assert_eq!(labels.len(), 3);
    let labels = issues.remove_label(1, "sev:high").await.unwrap();
    assert_eq!(labels.len(), 2);
    let err = issues.remove_label(1, "sev:high").await.unwrap_err();
    assert_eq!(status_of(&err), Some(404));
    assert_eq!(message_of(&err), "Label does not exist");

    // Assignees: add ignores non-assignable users, remove works.
    let issue = issues.add_assignees(1, &["bob", "mallory"]).await.unwrap();
    let who: Vec<&str> = issue.assignees.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(who, ["alice", "bob"]);
    assert!(issues.check_assignee("bob").await.unwrap());
    assert!(!issues.check_assignee("mallory").await.unwrap());
    let issue = issues.remove_assignees(1, &["bob"]).await.unwrap();
    assert_eq!(issue.assignees.len(), 1);

    // Comments.
    let c = issues
        .create_comment(1, "Escalating to the security team.")
        .await
        .unwrap();
    assert_eq!(c.user.login, "lever-test[bot]");
    let comments = issues.list_comments(1).per_page(10u8).send().await.unwrap();
    assert_eq!(comments.items.len(), 1);
    assert_eq!(
        comments.items[0].body.as_deref(),
        Some("Escalating to the security team.")
    );

    // Close as not planned, reopen.
    let closed = issues
        .update(1)
        .state(octocrab::models::IssueState::Closed)
        .state_reason(octocrab::models::issues::IssueStateReason::NotPlanned)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.state, octocrab::models::IssueState::Closed);
    let raw = fake.issue(REPO, 1).unwrap();
    assert_eq!(raw["state_reason"], "not_planned");
    assert_eq!(raw["closed_by"]["login"], "lever-test[bot]");
    issues
        .update(1)
        .state(octocrab::models::IssueState::Open)
        .send()
        .await
        .unwrap();
    assert_eq!(fake.issue(REPO, 1).unwrap()["state_reason"], "reopened");

    // Events, through octocrab and raw (octocrab's model drops `label`).
    let events = issues
        .events()
        .list_for_issue(1)
        .per_page(100u8)
        .send()
        .await
        .unwrap();
    let kinds: Vec<String> = events
        .items
        .iter()
        .map(|e| {
            serde_json::to_value(e.event.as_ref().unwrap())
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "labeled",
            "labeled",
            "assigned",
            "labeled",
            "unlabeled",
            "assigned",
            "unassigned",
            "closed",
            "reopened"
        ]
    );
    let raw: Value = gh
        .get("/repos/acme/payments/issues/1/events", None::<&()>)
        .await
        .unwrap();
    assert_eq!(raw[3]["label"]["name"], "cto-approved");
    assert_eq!(raw[3]["actor"]["login"], "lever-test[bot]");
    assert_eq!(raw[7]["state_reason"], "not_planned");
    assert_eq!(raw[5]["assignee"]["login"], "bob");

    // Every change was queued as a delivery with the bot as sender.
    let deliveries = fake.drain_webhooks();
    let names: Vec<String> = deliveries.iter().map(|d| d.schema_name()).collect();
    assert_eq!(
        names,
        [
            "issues-opened",
            "issues-labeled",
            "issues-labeled",
            "issues-assigned",
            "issues-labeled",
            "issues-unlabeled",
            "issues-assigned",
            "issues-unassigned",
            "issue-comment-created",
            "issues-closed",
            "issues-reopened"
        ]
    );
    assert!(deliveries.iter().all(|d| d.sender() == "lever-test[bot]"));
    fake.assert_conformant();
}

#[tokio::test]
async fn create_with_unassignable_assignee_is_422_and_creates_nothing() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let err = gh
        .issues("acme", "payments")
        .create("x")
        .assignees(vec!["alice".to_string(), "mallory".to_string()])
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(422));
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.message, "Validation Failed");
            assert_eq!(
                source.errors.as_ref().unwrap()[0],
                json!({"value": "mallory", "resource": "Issue", "field": "assignees", "code": "invalid"})
            );
        }
        other => panic!("{other}"),
    }
    assert!(fake.issues(REPO).is_empty());
    assert!(fake.drain_webhooks().is_empty());
    fake.assert_conformant();
}

#[tokio::test]
async fn list_issues_filters_and_pages_with_link_headers() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");
    for i in 1..=5 {
        let mut b = issues.create(format!("finding {i}"));
        if i % 2 == 1 {
            b = b.labels(vec!["security-finding".to_string()]);
        }
        b.send().await.unwrap();
    }
    let (n4, _) = fake.human_open_issue(REPO, "human issue", "hi", "alice");
    assert_eq!(n4, 6);
    issues
        .update(2)
        .state(octocrab::models::IssueState::Closed)
        .send()
        .await
        .unwrap();

    let page1 = issues
        .list()
        .state(params::State::All)
        .per_page(2)
        .page(1u32)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page1.items.iter().map(|i| i.number).collect::<Vec<_>>(),
        [6, 5]
    );
    assert_eq!(page1.number_of_pages(), Some(3));
    let next = page1.next.as_ref().expect("next link").to_string();
    assert!(
        next.contains("/repositories/") && next.contains("page=2"),
        "{next}"
    );
    let page3 = issues
        .list()
        .state(params::State::All)
        .per_page(2)
        .page(3u32)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page3.items.iter().map(|i| i.number).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(page3.next.is_none());

    let open_labeled = issues
        .list()
        .labels(&["security-finding".to_string()])
        .creator("lever-test[bot]")
        .direction(params::Direction::Ascending)
        .send()
        .await
        .unwrap();
    assert_eq!(
        open_labeled
            .items
            .iter()
            .map(|i| i.number)
            .collect::<Vec<_>>(),
        [1, 3, 5]
    );
    let closed = issues
        .list()
        .state(params::State::Closed)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.items.len(), 1);

    // octocrab's get_page follows the absolute Link URL and, like with GitHub Enterprise,
    // does not send the token there: the private repository is then invisible.
    let followed = gh
        .get_page::<octocrab::models::issues::Issue>(&page1.next)
        .await;
    assert!(
        followed.is_err(),
        "an unauthenticated follow must fail for a private repo"
    );
    // With the token, the `/repositories/{id}/…` alias serves the page.
    let token = fake.mint_installation_token(INST);
    let r = reqwest::Client::new()
        .get(&next)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 2);
    fake.assert_conformant();
}

/// Issue events page like GitHub's: oldest first, 100 at most per page, and a `Link` header
/// whose `rel="last"` names the last page (absent on the last page itself, and when there is
/// only one page), which octocrab's `Page` reads.
#[tokio::test]
async fn issue_events_are_oldest_first_with_link_headers() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let (n, _) = fake.human_open_issue(REPO, "long story", "", "alice");
    let (short, _) = fake.human_open_issue(REPO, "short story", "", "alice");
    let _ = fake.human_add_label(REPO, short, "bug", "alice");
    for _ in 0..125 {
        let _ = fake.human_add_label(REPO, n, "in-progress", "alice");
        let _ = fake.human_remove_label(REPO, n, "in-progress", "bob");
    }
    let route = format!("/repos/{REPO}/issues/{n}/events");
    let page = |p: u32| {
        let gh = gh.clone();
        let route = route.clone();
        async move {
            gh.get::<octocrab::Page<Value>, _, _>(
                route,
                Some(&[("per_page", "100".to_string()), ("page", p.to_string())]),
            )
            .await
            .unwrap()
        }
    };
    let first = page(1).await;
    assert_eq!(first.items.len(), 100);
    assert_eq!(first.number_of_pages(), Some(3));
    assert_eq!(first.items[0]["event"], "labeled");
    assert_eq!(first.items[0]["actor"]["login"], "alice");
    let last = page(3).await;
    assert_eq!(last.items.len(), 50);
    assert_eq!(last.number_of_pages(), None, "no rel=last on the last page");
    assert!(last.prev.is_some() && last.first.is_some() && last.next.is_none());
    assert_eq!(last.items[49]["event"], "unlabeled", "the newest is last");
    assert_eq!(last.items[49]["actor"]["login"], "bob");
    let one = gh
        .get::<octocrab::Page<Value>, _, _>(
            format!("/repos/{REPO}/issues/{short}/events"),
            Some(&[("per_page", "100")]),
        )
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.last.is_none() && one.next.is_none() && one.prev.is_none());
    fake.assert_conformant();
}

#[tokio::test]
async fn teams_permissions_rate_limit() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let m: Value = gh
        .get("/orgs/acme/teams/security/memberships/alice", None::<&()>)
        .await
        .unwrap();
    assert_eq!(m["state"], "active");
    let m: Value = gh
        .get("/orgs/acme/teams/security/memberships/carol", None::<&()>)
        .await
        .unwrap();
    assert_eq!(m["state"], "pending");
    let err = gh
        .get::<Value, _, _>("/orgs/acme/teams/security/memberships/mallory", None::<&()>)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(404));

    let p: Value = gh
        .get(
            "/repos/acme/payments/collaborators/alice/permission",
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(p["permission"], "write");
    let p: Value = gh
        .get(
            "/repos/acme/payments/collaborators/mallory/permission",
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(p["permission"], "none");

    let rl = gh.ratelimit().get().await.unwrap();
    assert_eq!(rl.resources.core.limit, 5000);
    fake.assert_conformant();
}

#[tokio::test]
async fn faults_after_effect_status_and_rate_limits() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");

    // A crash after GitHub created the issue: the client sees 502, the issue exists.
    fake.fail_after_effect("POST", "/repos/*/*/issues", 1);
    let err = issues
        .create("created despite 502")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(502), "{err}");
    assert_eq!(fake.issues(REPO).len(), 1);
    assert_eq!(
        fake.drain_webhooks().len(),
        1,
        "GitHub still sends issues.opened"
    );

    // A plain failure: nothing happens.
    fake.fail_next("POST", "/repos/*/*/issues", 503, 1);
    let err = issues.create("not created").send().await.unwrap_err();
    assert_eq!(status_of(&err), Some(503));
    assert_eq!(fake.issues(REPO).len(), 1);

    // Primary rate limit.
    fake.rate_limit_next("GET", "/repos/**", 1);
    let err = issues.get(1).await.unwrap_err();
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code, 403);
            let h = source.headers.as_ref().unwrap();
            assert_eq!(h["x-ratelimit-remaining"], "0");
            assert!(source.rate_limit_reset.is_some());
        }
        other => panic!("{other}"),
    }
    // Secondary rate limit with retry-after.
    fake.inject(
        "GET",
        "/repos/**",
        FaultKind::SecondaryRateLimit {
            status: 429,
            retry_after_secs: 30,
        },
        1,
    );
    let err = issues.get(1).await.unwrap_err();
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code, 429);
            assert_eq!(source.headers.as_ref().unwrap()["retry-after"], "30");
        }
        other => panic!("{other}"),
    }
    issues.get(1).await.expect("faults are used up");
    assert_eq!(fake.count("POST", "/repos/acme/payments/issues"), 2);
    assert_eq!(fake.count("GET", "/repos/acme/payments/issues/*"), 3);
    fake.assert_conformant();
}

/// The secondary limits, enforced in the test's time: a content-creating request over the
/// minute's or the hour's count is refused (403, `Retry-After`, no effect) and recorded; reads
/// and requests of other installations are not counted.
#[tokio::test]
async fn secondary_limits_are_enforced_per_installation_in_the_test_s_time() {
    let fake = setup().await;
    fake.add_installation(8, "other");
    fake.add_repo("other/tools", true, Some(8));
    let now = std::sync::Arc::new(std::sync::Mutex::new(fake.now()));
    let clock = now.clone();
    fake.enforce_secondary_limits(
        crate::fakes::github::SecondaryLimits::new(2, 3),
        move || *clock.lock().unwrap(),
    );
    let advance = |secs: i64| *now.lock().unwrap() += chrono::TimeDelta::seconds(secs);
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");
    issues.create("one").send().await.unwrap();
    advance(10);
    issues.create("two").send().await.unwrap();
    issues.list().send().await.expect("reads are not counted");
    let other = fake.app_client().installation(InstallationId(8)).unwrap();
    other
        .issues("other", "tools")
        .create("elsewhere")
        .send()
        .await
        .expect("another installation has its own count");
    // The minute's third write: refused until the first leaves the window (50 s, plus one).
    let err = issues.create("three").send().await.unwrap_err();
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code, 403);
            assert_eq!(source.headers.as_ref().unwrap()["retry-after"], "51");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        fake.issues(REPO).len(),
        2,
        "a refused request has no effect"
    );
    advance(51);
    issues.create("three").send().await.unwrap();
    // The hour's fourth write, two minutes later: refused for the hour.
    advance(120);
    let err = issues.create("four").send().await.unwrap_err();
    assert_eq!(status_of(&err), Some(403));
    let breaches = fake.breaches();
    assert_eq!(
        breaches
            .iter()
            .map(|b| (b.installation, b.window, b.method.as_str()))
            .collect::<Vec<_>>(),
        [(INST, "minute", "POST"), (INST, "hour", "POST")]
    );
    assert_eq!(fake.content_requests(INST).len(), 3);
    assert_eq!(fake.content_requests(8).len(), 1);
}

#[tokio::test]
async fn nonconforming_requests_are_recorded_as_violations() {
    let Some(_) = require_conformance("nonconforming_requests_are_recorded_as_violations") else {
        return;
    };
    let fake = setup().await;
    let token = fake.mint_installation_token(INST);
    let http = reqwest::Client::new();
    // state=bogus is not in the enum; `labels` must be an array; unknown endpoint.
    http.get(format!(
        "{}/repos/acme/payments/issues?state=bogus",
        fake.url()
    ))
    .bearer_auth(&token)
    .send()
    .await
    .unwrap();
    http.post(format!("{}/repos/acme/payments/issues", fake.url()))
        .bearer_auth(&token)
        .json(&json!({"title": "t", "labels": "not-an-array"}))
        .send()
        .await
        .unwrap();
    http.get(format!("{}/repos/acme/payments/frobnicate", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v = fake.violations();
    assert_eq!(v.len(), 3, "{v:#?}");
    assert!(v[0].problem.contains("state"), "{}", v[0]);
    assert!(v[1].problem.contains("labels"), "{}", v[1]);
    assert!(v[2].problem.contains("no operation"), "{}", v[2]);
    assert!(
        fake.response_violations().is_empty(),
        "{:#?}",
        fake.response_violations()
    );
}

#[tokio::test]
async fn search_issues_by_marker_label_state_with_lag_and_rate_limit() {
    let fake = setup().await;
    fake.freeze_clock();
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");
    for key in ["aaa", "bbb"] {
        issues
            .create(format!("finding {key}"))
            .body(format!("<!-- lever:group={key} -->\ntext"))
            .labels(vec!["security-finding".to_string()])
            .send()
            .await
            .unwrap();
    }
    issues
        .create("unrelated")
        .body("nothing")
        .send()
        .await
        .unwrap();
    issues
        .update(2)
        .state(octocrab::models::IssueState::Closed)
        .send()
        .await
        .unwrap();

    let search = |q: &'static str| gh.search().issues_and_pull_requests(q).per_page(100).send();
    let r = search("repo:acme/payments is:issue \"lever:group=bbb\"")
        .await
        .unwrap();
    assert_eq!(r.items.iter().map(|i| i.number).collect::<Vec<_>>(), [2]);
    assert_eq!(r.total_count, Some(1));
    let r = search("repo:acme/payments is:issue is:open label:security-finding")
        .await
        .unwrap();
    assert_eq!(r.items.iter().map(|i| i.number).collect::<Vec<_>>(), [1]);
    let r = search("repo:other/elsewhere is:issue").await.unwrap();
    assert!(
        r.items.is_empty(),
        "repos outside the installation are invisible"
    );

    // Index lag: a new issue is not searchable until the index is refreshed.
    fake.lag_search_index();
    issues
        .create("late")
        .body("<!-- lever:group=ccc -->")
        .send()
        .await
        .unwrap();
    let r = search("repo:acme/payments \"lever:group=ccc\"")
        .await
        .unwrap();
    assert!(r.items.is_empty());
    fake.refresh_search_index();
    let r = search("repo:acme/payments \"lever:group=ccc\"")
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);

    // 30 searches a minute.
    for _ in 0..25 {
        search("repo:acme/payments is:issue").await.unwrap();
    }
    let err = search("repo:acme/payments is:issue").await.unwrap_err();
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code, 403);
            assert_eq!(
                source.headers.as_ref().unwrap()["x-ratelimit-resource"],
                "search"
            );
        }
        other => panic!("{other}"),
    }
    fake.advance_clock(chrono::TimeDelta::seconds(61));
    // Tokens also live on the fake clock; 61 s is well within their hour.
    search("repo:acme/payments is:issue")
        .await
        .expect("a new minute");
    fake.assert_conformant();
}

#[tokio::test]
async fn deleted_and_transferred_issues_answer_410_and_301() {
    let fake = setup().await;
    fake.add_repo("acme/platform", true, Some(INST));
    let (n1, _) = fake.human_open_issue(REPO, "to delete", "x", "alice");
    let (n2, _) = fake.human_open_issue(REPO, "to move", "y", "alice");
    fake.human_delete_issue(REPO, n1, "alice");
    let (moved, d) = fake.human_transfer_issue(REPO, n2, "acme/platform", "alice");
    assert_eq!(d.payload["changes"]["new_issue"]["number"], moved);

    let token = fake.mint_installation_token(INST);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/repos/acme/payments/issues/{n1}", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let r = http
        .get(format!("{}/repos/acme/payments/issues/{n2}", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("{}/repos/acme/platform/issues/{moved}", fake.url())
    );
    let r = http
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "to move");
    // Neither shows up in listings any more.
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let listed = gh
        .issues("acme", "payments")
        .list()
        .state(params::State::All)
        .send()
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    fake.assert_conformant();
}

#[tokio::test]
async fn replace_and_clear_labels_and_edit_comments() {
    let fake = setup().await;
    let gh = fake
        .app_client()
        .installation(InstallationId(INST))
        .unwrap();
    let issues = gh.issues("acme", "payments");
    issues
        .create("x")
        .labels(vec!["a".into(), "b".into()])
        .send()
        .await
        .unwrap();
    let labels = issues
        .replace_all_labels(1, &["b".into(), "c".into()])
        .await
        .unwrap();
    assert_eq!(
        labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    let on_issue = issues.list_labels_for_issue(1).send().await.unwrap();
    assert_eq!(on_issue.items.len(), 2);
    issues.remove_all_labels(1).await.unwrap();
    assert!(
        fake.issue(REPO, 1).unwrap()["labels"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fake.repo_labels(REPO),
        ["a", "b", "c"],
        "labels stay in the repository"
    );

    let c = issues.create_comment(1, "first").await.unwrap();
    // octocrab's update_comment sends POST (not the documented PATCH); GitHub accepts it as a
    // legacy alias, so the fake serves it and records a violation.
    let c = issues.update_comment(c.id, "edited").await.unwrap();
    assert_eq!(c.body.as_deref(), Some("edited"));
    let v = fake.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].problem.contains("legacy alias"), "{v:#?}");
    let names: Vec<String> = fake
        .drain_webhooks()
        .iter()
        .map(|d| d.schema_name())
        .collect();
    assert_eq!(
        names,
        [
            "issues-opened",
            "issues-labeled",
            "issues-labeled",
            "issues-unlabeled",
            "issues-labeled",
            "issues-unlabeled",
            "issues-unlabeled",
            "issue-comment-created",
            "issue-comment-edited"
        ]
    );
    assert!(
        fake.response_violations().is_empty(),
        "{:#?}",
        fake.response_violations()
    );
}
