//! `lever setup`: creates Lever's GitHub App from its manifest, as Probot's apps do.
//!
//! 1. A page on a loopback address (`--listen`, default `127.0.0.1:3000`) holds a form that
//!    posts the manifest (`lever app manifest`, with `redirect_url` set to this page's
//!    `/callback`) to `$GITHUB_WEB_URL/settings/apps/new?state=…` (or
//!    `/organizations/ORG/settings/apps/new` with `--org`).
//! 2. GitHub shows the App, the user creates it, and GitHub sends the browser to
//!    `/callback?code=…&state=…`. A wrong `state` is refused (another page cannot make this
//!    one accept its code).
//! 3. The code is exchanged with `POST /app-manifests/{code}/conversions` on `GITHUB_API_URL`
//!    for the App's id, private key, webhook secret, client id and client secret, written to
//!    `--env-file` (default `.env`) with mode 0600 under the names Lever reads
//!    (`GITHUB_APP_ID`, `GITHUB_PRIVATE_KEY`, `GITHUB_WEBHOOK_SECRET`; the client id and secret
//!    as `GITHUB_CLIENT_ID` / `GITHUB_CLIENT_SECRET`, which Lever does not read today).
//!
//! An existing file is never overwritten without `--force`, and an overwritten file keeps
//! its mode, narrowed to 0600 at most: the mode is never widened.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::Failure;
use super::app_manifest::{ManifestOptions, manifest};
use crate::config::ProcessSettings;

/// What `lever setup` needs.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// The manifest, without `redirect_url` (the flow sets it).
    pub manifest: ManifestOptions,
    /// Create the App in this organization instead of the user's account.
    pub org: Option<String>,
    /// GitHub's web host (`GITHUB_WEB_URL`).
    pub web_url: String,
    /// GitHub's REST API (`GITHUB_API_URL`).
    pub api_url: String,
    pub env_file: PathBuf,
    pub force: bool,
}

/// The App GitHub created (`POST /app-manifests/{code}/conversions`).
#[derive(Clone, Deserialize)]
pub struct Conversion {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
    pub html_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: Option<String>,
    pub pem: String,
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversion")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("html_url", &self.html_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why the flow stopped.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{0} exists; remove it or pass --force to overwrite it (its mode is kept, narrowed to 0600)"
    )]
    EnvFileExists(PathBuf),
    #[error("GitHub did not convert the manifest code into an App: {0}")]
    Conversion(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the setup page stopped: {0}")]
    Server(String),
}

/// Where the manifest form posts (`?state=` added by the page).
pub fn create_app_url(web_url: &str, org: Option<&str>) -> String {
    let web = web_url.trim().trim_end_matches('/');
    match org {
        Some(org) => format!("{web}/organizations/{org}/settings/apps/new"),
        None => format!("{web}/settings/apps/new"),
    }
}

/// The `.env` text for a created App, under the names Lever reads. The key's newlines are
/// written as literal `\n` (Lever unfolds them), so that every value is one line and the file
/// works as `docker run --env-file`, a systemd `EnvironmentFile` or a Compose `env_file`.
pub fn env_file_text(c: &Conversion) -> String {
    let mut out = format!(
        "# The GitHub App {} (id {}), written by `lever setup`. Keep this file secret.\n",
        c.html_url, c.id
    );
    out.push_str(&format!("GITHUB_APP_ID={}\n", c.id));
    out.push_str(&format!(
        "GITHUB_PRIVATE_KEY={}\n",
        c.pem.trim().replace("\r\n", "\n").replace('\n', "\\n")
    ));
    match &c.webhook_secret {
        Some(s) if !s.is_empty() => out.push_str(&format!("GITHUB_WEBHOOK_SECRET={s}\n")),
        _ => out.push_str(
            "# GitHub returned no webhook secret: set one on the App's page and here.\nGITHUB_WEBHOOK_SECRET=\n",
        ),
    }
    out.push_str("# Not read by Lever; kept for tools that act as the App's OAuth client.\n");
    out.push_str(&format!("GITHUB_CLIENT_ID={}\n", c.client_id));
    out.push_str(&format!("GITHUB_CLIENT_SECRET={}\n", c.client_secret));
    out
}

/// Writes `text` to `path` with mode 0600: a new file is created with that mode; an existing
/// one is refused unless `force`, and then keeps its mode narrowed to at most 0600.
pub fn write_env_file(path: &Path, text: &str, force: bool) -> Result<(), SetupError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| SetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            SetupError::EnvFileExists(path.to_path_buf())
        } else {
            err(e)
        }
    })?;
    let mode = f.metadata().map_err(err)?.permissions().mode() & 0o7777;
    if mode & !0o600 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o600))
            .map_err(err)?;
    }
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Exchanges a manifest code for the App's credentials (no authentication needed).
pub async fn convert(api_url: &str, code: &str) -> Result<Conversion, SetupError> {
    if code.is_empty()
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SetupError::Conversion(format!(
            "the code {code:?} is not one GitHub issues"
        )));
    }
    let client = octocrab::Octocrab::builder()
        .base_uri(api_url.trim())
        .map_err(|e| SetupError::Conversion(format!("GITHUB_API_URL {api_url:?}: {e}")))?
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
        .build()
        .map_err(|e| SetupError::Conversion(e.to_string()))?;
    let route = format!("/app-manifests/{code}/conversions");
    client
        .post::<_, Conversion>(route, None::<&()>)
        .await
        .map_err(|e| {
            SetupError::Conversion(match e {
                octocrab::Error::GitHub { source, .. } => format!(
                    "POST /app-manifests/{{code}}/conversions answered {} {} (a code is valid for one hour and only once; run `lever setup` again)",
                    source.status_code.as_u16(),
                    source.message
                ),
                other => format!("POST /app-manifests/{{code}}/conversions on {api_url}: {other}"),
            })
        })
}

struct Flow {
    opts: SetupOptions,
    state: String,
    page: String,
    done: mpsc::Sender<Result<Conversion, SetupError>>,
    /// Set once a code was accepted: later callbacks are refused.
    used: Mutex<bool>,
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn page(opts: &SetupOptions, redirect_url: &str, state: &str) -> String {
    let mut m = opts.manifest.clone();
    m.redirect_url = Some(redirect_url.to_string());
    let json = manifest(&m).to_string();
    let action = format!(
        "{}?state={state}",
        create_app_url(&opts.web_url, opts.org.as_deref())
    );
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Create the GitHub App {name}</title></head>\n\
         <body>\n<h1>Create the GitHub App {name}</h1>\n\
         <p>GitHub will show the App's name, webhook URL, permissions and events before you create it. \
         Its credentials come back to this page and are written to {file} (mode 0600).</p>\n\
         <form action=\"{action}\" method=\"post\">\n\
         <input type=\"hidden\" name=\"manifest\" value=\"{manifest}\">\n\
         <button type=\"submit\">Create the GitHub App on {web}</button>\n</form>\n</body></html>\n",
        name = escape(&opts.manifest.name),
        file = escape(&opts.env_file.display().to_string()),
        action = escape(&action),
        manifest = escape(&json),
        web = escape(&opts.web_url),
    )
}

async fn index(State(flow): State<Arc<Flow>>) -> Html<String> {
    Html(flow.page.clone())
}

async fn callback(State(flow): State<Arc<Flow>>, Query(q): Query<Callback>) -> Response {
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| subtle::ConstantTimeEq::ct_eq(s.as_bytes(), flow.state.as_bytes()).into());
    if !state_ok {
        return (
            StatusCode::BAD_REQUEST,
            "The state does not match the one this setup page sent: refused. Start again from the setup page.\n",
        )
            .into_response();
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "The callback carries no code.\n").into_response();
    };
    {
        let mut used = flow.used.lock().unwrap();
        if *used {
            return (
                StatusCode::CONFLICT,
                "This setup already received its code.\n",
            )
                .into_response();
        }
        *used = true;
    }
    let result = match convert(&flow.opts.api_url, &code).await {
        Ok(c) => {
            write_env_file(&flow.opts.env_file, &env_file_text(&c), flow.opts.force).map(|()| c)
        }
        Err(e) => Err(e),
    };
    let response = match &result {
        Ok(c) => Html(format!(
            "<!doctype html>\n<html><body><h1>The GitHub App exists</h1>\n\
             <p><a href=\"{url}\">{url}</a> (id {id}); its credentials are in {file}.</p>\n\
             <p>Next: <a href=\"{url}/installations/new\">install it</a> on the repositories Lever files issues in.</p>\n\
             </body></html>\n",
            url = escape(&c.html_url),
            id = c.id,
            file = escape(&flow.opts.env_file.display().to_string()),
        ))
        .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("The App was not set up: {e}\n"),
        )
            .into_response(),
    };
    let _ = flow.done.send(result).await;
    response
}

/// Serves the setup page on `listener` until a callback succeeds or fails; returns the App.
pub async fn run_flow(
    listener: tokio::net::TcpListener,
    opts: SetupOptions,
) -> Result<Conversion, SetupError> {
    if opts.env_file.exists() && !opts.force {
        return Err(SetupError::EnvFileExists(opts.env_file.clone()));
    }
    let addr = listener
        .local_addr()
        .map_err(|e| SetupError::Server(e.to_string()))?;
    let state = uuid::Uuid::new_v4().simple().to_string();
    let redirect_url = format!("http://{addr}/callback");
    let (tx, mut rx) = mpsc::channel(1);
    let flow = Arc::new(Flow {
        page: page(&opts, &redirect_url, &state),
        opts,
        state,
        done: tx,
        used: Mutex::new(false),
    });
    let router = axum::Router::new()
        .route("/", get(index))
        .route("/callback", get(callback))
        .with_state(flow);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let result = rx
        .recv()
        .await
        .unwrap_or_else(|| Err(SetupError::Server("the page closed".into())));
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(SetupError::Server(e.to_string())),
        Err(e) => return Err(SetupError::Server(e.to_string())),
    }
    result
}

/// `lever setup`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    settings: &ProcessSettings,
    url: &str,
    name: &str,
    homepage: Option<&str>,
    org: Option<&str>,
    env_file: &Path,
    force: bool,
    listen: &str,
    config: Option<&Path>,
) -> Result<(), Failure> {
    let url = super::app_manifest::base_url(url).map_err(Failure::usage)?;
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Failure::usage(format!(
            "--listen {listen:?} is not an address such as 127.0.0.1:3000"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(Failure::usage(format!(
            "--listen {listen}: the setup page receives the App's secrets; listen on a loopback address (127.0.0.1, ::1)"
        )));
    }
    if let Some(org) = org
        && !crate::config::is_login(org)
    {
        return Err(Failure::usage(format!(
            "--org {org:?} is not an organization login"
        )));
    }
    let config_source = match config {
        Some(dir) => super::app_manifest::config_source_in(dir)?,
        None => false,
    };
    let opts = SetupOptions {
        manifest: ManifestOptions {
            name: name.to_string(),
            url,
            homepage: homepage.map(str::to_string),
            redirect_url: None,
            config_source,
        },
        org: org.map(str::to_string),
        web_url: settings.github_web_url.clone(),
        api_url: settings.github_api_url.clone(),
        env_file: env_file.to_path_buf(),
        force,
    };
    if opts.env_file.exists() && !force {
        return Err(Failure::usage(SetupError::EnvFileExists(opts.env_file)));
    }
    super::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::failed(e.to_string()))?;
        println!("Open http://{local}/ in a browser to create the GitHub App (Ctrl-C to stop).");
        let file = opts.env_file.clone();
        let created = run_flow(listener, opts)
            .await
            .map_err(Failure::failed)?;
        println!(
            "Created the GitHub App {} (id {}); wrote {} (mode 0600).\nInstall it: {}/installations/new",
            created.html_url,
            created.id,
            file.display(),
            created.html_url
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversion() -> Conversion {
        Conversion {
            id: 42,
            slug: Some("lever".into()),
            html_url: "https://github.com/apps/lever".into(),
            client_id: "Iv1.abc".into(),
            client_secret: "client-secret".into(),
            webhook_secret: Some("hook-secret".into()),
            pem: "-----BEGIN RSA PRIVATE KEY-----\nAAA\nBBB\n-----END RSA PRIVATE KEY-----\n"
                .into(),
        }
    }

    #[test]
    fn the_env_file_uses_the_names_lever_reads_one_value_a_line() {
        let text = env_file_text(&conversion());
        assert!(text.contains("GITHUB_APP_ID=42\n"), "{text}");
        assert!(
            text.contains("GITHUB_PRIVATE_KEY=-----BEGIN RSA PRIVATE KEY-----\\nAAA\\nBBB\\n-----END RSA PRIVATE KEY-----\n"),
            "{text}"
        );
        assert!(text.contains("GITHUB_WEBHOOK_SECRET=hook-secret\n"));
        assert!(text.contains("GITHUB_CLIENT_ID=Iv1.abc\nGITHUB_CLIENT_SECRET=client-secret\n"));
        // Lever's own reading of the key unfolds it back.
        let settings = ProcessSettings {
            github_private_key: Some(secrecy::SecretString::from(
                "-----BEGIN RSA PRIVATE KEY-----\\nAAA\\nBBB\\n-----END RSA PRIVATE KEY-----",
            )),
            ..ProcessSettings::default()
        };
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&settings.private_key_pem().unwrap()),
            "-----BEGIN RSA PRIVATE KEY-----\nAAA\nBBB\n-----END RSA PRIVATE KEY-----"
        );
        assert!(!format!("{:?}", conversion()).contains("secret"));
    }

    #[test]
    fn the_form_posts_to_the_user_or_the_organization() {
        assert_eq!(
            create_app_url("https://github.com/", None),
            "https://github.com/settings/apps/new"
        );
        assert_eq!(
            create_app_url("https://ghe.example.com", Some("acme")),
            "https://ghe.example.com/organizations/acme/settings/apps/new"
        );
    }

    #[test]
    fn an_env_file_is_created_0600_and_never_widened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        write_env_file(&path, "A=1\n", false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert!(matches!(
            write_env_file(&path, "A=2\n", false),
            Err(SetupError::EnvFileExists(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=1\n");
        // --force: an existing 0644 file is narrowed, a 0400 one is not widened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_env_file(&path, "A=3\n", true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=3\n");
        let other = dir.path().join("other.env");
        std::fs::write(&other, "").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o220)).unwrap();
        write_env_file(&other, "B=1\n", true).unwrap();
        assert_eq!(mode(&other), 0o200);
    }
}
