//! `[noise]`: the noise cap, how many new issues one product may open per hour.
//!
//! ```toml
//! [noise]
//! max_new_issues_per_product_per_hour = 20   # 0 or absent: no cap (the default)
//!
//! [noise.products]                           # per product (its repository), over the default
//! "acme/payments" = 50                       # 0: this product is not capped
//! ```
//!
//! A *product* is the repository its issues open in: OWNERS routes each finding to one
//! repository (the demo's payments product is `acme/payments`), and the fallback repository is
//! the product of everything no OWNERS line claims.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Serialize;

use super::RepoName;
use super::spanned::{Diag, Table};

/// The window the cap counts in.
pub const WINDOW: Duration = Duration::hours(1);

/// At most this many can be configured (GitHub's content budget is 500 writes an hour per
/// installation: a larger cap would never bind).
pub const MAX_CAP: i64 = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NoiseSettings {
    /// `max_new_issues_per_product_per_hour`: 0 for no cap.
    pub max_per_hour: u32,
    /// `[noise.products]`: per product (repository, lowercase), 0 for no cap.
    pub products: BTreeMap<String, u32>,
}

impl NoiseSettings {
    /// How many new issues `product` (a repository, any case) may open per [`WINDOW`];
    /// `None` when it is not capped.
    pub fn limit_for(&self, product: &str) -> Option<u32> {
        let n = self
            .products
            .get(&product.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.max_per_hour);
        (n > 0).then_some(n)
    }
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> NoiseSettings {
    let mut out = NoiseSettings::default();
    let Some(mut t) = root.table(d, "noise") else {
        return out;
    };
    if let Some(n) = t.integer(d, "max_new_issues_per_product_per_hour", 0, MAX_CAP) {
        out.max_per_hour = n.into_inner() as u32;
    }
    if let Some(mut products) = t.table(d, "products") {
        let names: Vec<(String, std::ops::Range<usize>)> = products
            .entries()
            .into_iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span()))
            .collect();
        for (name, span) in names {
            if let Err(e) = RepoName::parse(&name) {
                d.error(span, format!("noise.products: {e}"));
                continue;
            }
            if let Some(n) = products.integer(d, &name, 0, MAX_CAP) {
                out.products
                    .insert(name.to_ascii_lowercase(), n.into_inner() as u32);
            }
        }
        products.finish(d);
    }
    t.finish(d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_table() {
        let s = NoiseSettings {
            max_per_hour: 20,
            products: [("acme/payments".into(), 50), ("acme/ledger".into(), 0)].into(),
        };
        let off = NoiseSettings::default();
        let only_one = NoiseSettings {
            max_per_hour: 0,
            products: [("acme/web".into(), 5)].into(),
        };
        let rows: &[(&str, &NoiseSettings, &str, Option<u32>)] = &[
            ("the default", &s, "acme/platform", Some(20)),
            ("an override", &s, "acme/payments", Some(50)),
            ("an override, any case", &s, "Acme/Payments", Some(50)),
            ("0 overrides to uncapped", &s, "acme/ledger", None),
            ("off by default", &off, "acme/web", None),
            ("only the product named", &only_one, "acme/web", Some(5)),
            ("others uncapped", &only_one, "acme/other", None),
        ];
        let wrong: Vec<String> = rows
            .iter()
            .filter_map(|(name, settings, product, want)| {
                let got = settings.limit_for(product);
                (got != *want).then(|| format!("{name}: {got:?}, expected {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
