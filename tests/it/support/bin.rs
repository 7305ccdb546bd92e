//! Running the real `lever` binary from the repository root.

use std::process::{Command, Output};

/// `lever ARGS…` in the repository root; its output.
pub fn lever(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(args)
        .current_dir(super::app::root())
        .output()
        .expect("run lever")
}

/// `lever serve` as a child process on a free loopback port, configured only through its
/// environment (as in production), against the fakes; `database_url` unset means the default
/// (`sqlite://lever.db` in `work`).
pub struct Served {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Served {
    pub async fn start(
        gh: &crate::fakes::github::FakeGitHub,
        sh: &crate::fakes::securityhub::FakeSecurityHub,
        work: &std::path::Path,
        database_url: Option<&str>,
    ) -> Served {
        Self::start_with(gh, sh, work, database_url, &[]).await
    }

    /// [`Served::start`] with more environment variables (`env` wins).
    pub async fn start_with(
        gh: &crate::fakes::github::FakeGitHub,
        sh: &crate::fakes::securityhub::FakeSecurityHub,
        work: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> Served {
        let served = Self::spawn(
            gh,
            sh,
            work,
            database_url,
            env,
            &crate::support::app::root().join("examples/demo"),
            false,
        );
        served.until_ready().await;
        served
    }

    /// [`Served::start_with`] with the configuration directory `config`.
    pub async fn start_in(
        gh: &crate::fakes::github::FakeGitHub,
        sh: &crate::fakes::securityhub::FakeSecurityHub,
        work: &std::path::Path,
        database_url: Option<&str>,
        config: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Served {
        let served = Self::spawn(gh, sh, work, database_url, env, config, false);
        served.until_ready().await;
        served
    }

    /// `lever serve --config CONFIG_DIR` as [`Served::start_with`] runs it, not waited for;
    /// with `pipe_stderr`, its standard error is kept for `wait_with_output` (for a start
    /// expected to fail: a server's logs would fill the pipe).
    pub fn spawn(
        gh: &crate::fakes::github::FakeGitHub,
        sh: &crate::fakes::securityhub::FakeSecurityHub,
        work: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
        config_dir: &std::path::Path,
        pipe_stderr: bool,
    ) -> Served {
        use crate::support::app::{INGEST_TOKEN, WEBHOOK_SECRET, root};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lever"));
        cmd.args([
            "serve",
            "--config",
            config_dir.to_str().unwrap(),
            "--listen",
            &listen,
        ])
        .current_dir(work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "GITHUB_APP_ID",
            crate::fakes::github::TEST_APP_ID.to_string(),
        )
        .env(
            "GITHUB_PRIVATE_KEY_PATH",
            root().join("tests/fixtures/github-app-test-key.TEST-ONLY.pem"),
        )
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("LEVER_INGEST_TOKEN", INGEST_TOKEN)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", sh.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd.envs(env.iter().copied());
        if pipe_stderr {
            cmd.stderr(std::process::Stdio::piped());
        }
        let child = cmd.spawn().expect("spawn lever serve");
        Served {
            child,
            base: format!("http://{listen}"),
        }
    }

    /// Polls `/readyz` (with a deadline): the binary runs on real time.
    pub async fn until_ready(&self) {
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "lever serve not ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }

    /// SIGTERM, and its exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops")
            .unwrap()
    }
}

/// `lever ARGS…` with only the environment it needs to reach the fakes (`PATH`, `DATABASE_URL`,
/// the test App's id and key, `GITHUB_API_URL`, the Security Hub endpoint and static AWS
/// credentials, no instance metadata), as `lever sync` runs from cron. Not yet run.
pub fn lever_against_fakes(
    args: &[&str],
    database_url: &str,
    github_url: &str,
    securityhub_url: &str,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lever"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env(
            "GITHUB_APP_ID",
            crate::fakes::github::TEST_APP_ID.to_string(),
        )
        .env(
            "GITHUB_PRIVATE_KEY",
            crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
        )
        .env("GITHUB_API_URL", github_url)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", securityhub_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}
