//! The App's webhook deliveries. GitHub keeps them for 3 days and never redelivers a failed
//! one by itself: Lever lists them (`GET /app/hook/deliveries`, newest first, paged by a
//! cursor in the `Link` header) and asks for failed ones again
//! (`POST /app/hook/deliveries/{id}/attempts`). Both calls authenticate as the App (JWT).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{GitHub, GitHubError, Result};

/// One delivery attempt, as GitHub lists it (only the fields Lever needs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HookDelivery {
    /// This attempt's id (what a redelivery request names).
    pub id: u64,
    /// `X-GitHub-Delivery`: the same for an event's first delivery and its redeliveries.
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    #[serde(default)]
    pub redelivery: bool,
    /// The HTTP status Lever answered (0 when GitHub could not connect).
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl HookDelivery {
    /// Lever accepted it (2xx).
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The `cursor` of the `rel="next"` link of a `Link` header, if any.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "cursor" && !v.is_empty()).then(|| v.to_string())
        })
    })
}

impl GitHub {
    /// One page (at most 100) of the App's recent deliveries, newest first, and the cursor of
    /// the next (older) page.
    pub async fn hook_deliveries(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<HookDelivery>, Option<String>)> {
        let mut route = "/app/hook/deliveries?per_page=100".to_string();
        if let Some(c) = cursor {
            route.push_str("&cursor=");
            route.push_str(&percent(c));
        }
        let client = self.app_client()?;
        let what = "the App's webhook deliveries";
        let res = client
            ._get(route.as_str())
            .await
            .map_err(|e| GitHubError::from_octocrab(e, what))?;
        let res = octocrab::map_github_error(res)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, what))?;
        let next = res
            .headers()
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_cursor);
        let body = client
            .body_to_string(res)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, what))?;
        let page: Vec<HookDelivery> =
            serde_json::from_str(&body).map_err(|e| GitHubError::Other {
                status: 200,
                message: format!("{what}: unexpected response: {e}"),
            })?;
        Ok((page, next))
    }

    /// Asks GitHub to deliver attempt `id` again (202).
    pub async fn redeliver(&self, id: u64) -> Result<()> {
        let client = self.app_client()?;
        let what = format!("redelivery of webhook delivery {id}");
        let res = client
            ._post(
                format!("/app/hook/deliveries/{id}/attempts").as_str(),
                None::<&()>,
            )
            .await
            .map_err(|e| GitHubError::from_octocrab(e, &what))?;
        octocrab::map_github_error(res)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, &what))?;
        Ok(())
    }
}

/// A cursor is opaque: keep it URL-safe.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let cases = [
            (
                r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12077215967>; rel="next""#,
                Some("v1_12077215967"),
            ),
            (
                r#"<https://api.github.com/app/hook/deliveries?cursor=v1_2&per_page=100>; rel="prev", <https://api.github.com/app/hook/deliveries?cursor=v1_9&per_page=100>; rel="next""#,
                Some("v1_9"),
            ),
            (
                r#"<https://api.github.com/app/hook/deliveries?cursor=v1_2>; rel="prev""#,
                None,
            ),
            ("", None),
            ("garbage", None),
        ];
        for (link, want) in cases {
            assert_eq!(next_cursor(link).as_deref(), want, "{link}");
        }
    }

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(percent("v1_12+3/4="), "v1_12%2B3%2F4%3D");
    }
}
