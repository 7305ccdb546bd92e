//! `lever serve`'s limits at the HTTP edge (issue 9, item 8): how long a client may take to
//! send its headers and its whole request, how many connections and how many large bodies
//! are held at once. Together they bound the memory unauthenticated clients can make Lever
//! use (the README's "Limits at the edge" states the bound).

use std::time::Duration;

use clap::Args;

/// `LEVER_MAX_CONNECTIONS` when unset.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;
/// `LEVER_MAX_LARGE_BODIES` when unset.
pub const DEFAULT_MAX_LARGE_BODIES: u32 = 4;
/// `LEVER_HEADER_TIMEOUT` (seconds) when unset.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// `LEVER_REQUEST_TIMEOUT` (seconds) when unset.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct EdgeSettings {
    /// Most open connections; one more is answered 503 and closed.
    #[arg(
        long,
        env = "LEVER_MAX_CONNECTIONS",
        global = true,
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=65_535)
    )]
    pub max_connections: u32,

    /// Most request bodies above 64 KiB (or of unknown length) read at once; one more is
    /// answered 503 with Retry-After.
    #[arg(
        long,
        env = "LEVER_MAX_LARGE_BODIES",
        global = true,
        value_name = "N",
        default_value_t = DEFAULT_MAX_LARGE_BODIES,
        value_parser = clap::value_parser!(u32).range(1..=256)
    )]
    pub max_large_bodies: u32,

    /// Seconds a client has to send a request's headers (also how long an idle connection
    /// stays open); then the connection is closed (408 when a request had begun).
    #[arg(
        long,
        env = "LEVER_HEADER_TIMEOUT",
        global = true,
        value_name = "SECONDS",
        default_value_t = DEFAULT_HEADER_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    pub header_timeout_secs: u64,

    /// Seconds a request may take in all, body included; then it is answered 408.
    #[arg(
        long,
        env = "LEVER_REQUEST_TIMEOUT",
        global = true,
        value_name = "SECONDS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    pub request_timeout_secs: u64,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_large_bodies: DEFAULT_MAX_LARGE_BODIES,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
        }
    }
}

impl EdgeSettings {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
