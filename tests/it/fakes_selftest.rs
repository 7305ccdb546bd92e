//! Tests of the fakes themselves, with the real octocrab and AWS SDK clients.
//!
//! Every GitHub test ends with `assert_conformant()`: the requests octocrab sent validate
//! against GitHub's OpenAPI description and so do all responses of the fake.

mod github;
mod github_webhooks;
mod securityhub;
