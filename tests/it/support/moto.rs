//! moto's server (PyPI `moto[server]`) for the Tagging API tests: started on a free loopback
//! port when `moto_server` is on the PATH, a loud skip otherwise (`LEVER_REQUIRE_MOTO=1` turns
//! the skip into a failure, as `.ci/run` does).
//!
//! Lever's real Tagging API client (and the STS AssumeRole it does first) is pointed at the
//! server by endpoint URL. The fixtures (EC2 security groups and their tags) are made with
//! plain EC2 query-API requests: moto reads the service and region from the `Authorization`
//! header and does not check signatures. moto's default account is [`ACCOUNT`]; a role assumed
//! in it acts there.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_resourcegroupstagging::config::{Credentials, Region, SharedCredentialsProvider};

use lever::securityhub::Tagging;

use super::pg::loud;

/// The account moto's resources live in.
pub const ACCOUNT: &str = "123456789012";

pub fn required() -> bool {
    std::env::var("LEVER_REQUIRE_MOTO").is_ok_and(|v| v == "1")
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(bin).is_file()))
}

/// `application/x-www-form-urlencoded` of one key or value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct Moto {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A security group made on moto.
pub struct Group {
    pub id: String,
    pub arn: String,
}

impl Moto {
    /// moto's server for `test`, or `None` after a loud skip line (a panic when required).
    pub async fn start(test: &str) -> Option<Moto> {
        if !on_path("moto_server") {
            if required() {
                panic!(
                    "{test}: moto's server required (LEVER_REQUIRE_MOTO=1) but moto_server is not on the PATH (pip install 'moto[server]')"
                );
            }
            loud(&format!(
                "*** SKIPPED: moto test {test} (moto_server is not on the PATH: pip install 'moto[server]') ***"
            ));
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        // moto takes a few seconds to import its services on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = moto
                .http
                .get(format!("{}/moto-api/", moto.url))
                .send()
                .await
                && r.status().is_success()
            {
                return Some(moto);
            }
            assert!(
                Instant::now() < deadline,
                "{test}: moto_server did not answer on {} within 90 s",
                moto.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The SDK configuration pointing at this server (region, fake credentials, endpoint).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIAFAKEFAKEFAKEFAKE",
                "fake-secret-access-key",
                None,
                None,
                "moto",
            )))
            .load()
            .await
    }

    /// Lever's Tagging API client on this server (fast pacing: moto does not throttle).
    pub async fn tagging(&self) -> Tagging {
        Tagging::from_sdk_config(self.sdk_config().await, 100)
    }

    async fn ec2(&self, region: &str, params: &[(&str, &str)]) -> String {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKEFAKE/20261123/{region}/ec2/aws4_request, SignedHeaders=host, Signature=00"
        );
        let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
        form.extend_from_slice(params);
        let r = self
            .http
            .post(format!("{}/", self.url))
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "moto EC2 {params:?}: {status} {body}");
        body
    }

    /// A new security group in `region`.
    pub async fn security_group(&self, region: &str, name: &str) -> Group {
        let body = self
            .ec2(
                region,
                &[
                    ("Action", "CreateSecurityGroup"),
                    ("GroupName", name),
                    ("GroupDescription", "lever test"),
                ],
            )
            .await;
        let between = |open: &str, close: &str| {
            let start = body
                .find(open)
                .unwrap_or_else(|| panic!("{open} in {body}"))
                + open.len();
            let end = start + body[start..].find(close).unwrap();
            body[start..end].to_string()
        };
        let id = between("<groupId>", "</groupId>");
        Group {
            arn: format!("arn:aws:ec2:{region}:{ACCOUNT}:security-group/{id}"),
            id,
        }
    }

    /// Tags (or re-tags) resource `id` in `region`.
    pub async fn tag(&self, region: &str, id: &str, key: &str, value: &str) {
        self.ec2(
            region,
            &[
                ("Action", "CreateTags"),
                ("ResourceId.1", id),
                ("Tag.1.Key", key),
                ("Tag.1.Value", value),
            ],
        )
        .await;
    }

    /// Removes tag `key` from resource `id` in `region`.
    pub async fn untag(&self, region: &str, id: &str, key: &str) {
        self.ec2(
            region,
            &[
                ("Action", "DeleteTags"),
                ("ResourceId.1", id),
                ("Tag.1.Key", key),
            ],
        )
        .await;
    }
}
