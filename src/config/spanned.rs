//! A small reader over toml's spanned document tree, so that every configuration error can
//! name its `file:line` and so that all errors are reported at once, not only the first.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// Collects errors for one file, turning byte offsets into line numbers.
pub struct Diag<'a> {
    pub file: String,
    src: &'a str,
    pub errors: Vec<ConfigError>,
}

impl<'a> Diag<'a> {
    pub fn new(file: impl Into<String>, src: &'a str) -> Self {
        Diag {
            file: file.into(),
            src,
            errors: Vec::new(),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }
}

pub type Value<'i> = Spanned<DeValue<'i>>;

pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A table being read: remembers which keys were consumed so unknown keys can be reported.
pub struct Table<'t, 'i> {
    pub path: String,
    pub span: Range<usize>,
    table: &'t DeTable<'i>,
    seen: Vec<String>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn new(path: impl Into<String>, span: Range<usize>, table: &'t DeTable<'i>) -> Self {
        Table {
            path: path.into(),
            span,
            table,
            seen: Vec::new(),
        }
    }

    fn qualify(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&mut self, key: &str) -> Option<&'t Value<'i>> {
        self.seen.push(key.to_string());
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    /// All entries, marking every key as seen (for maps keyed by name).
    pub fn entries(&mut self) -> Vec<(&'t Spanned<toml::de::DeString<'i>>, &'t Value<'i>)> {
        let all: Vec<_> = self.table.iter().collect();
        for (k, _) in &all {
            self.seen.push(k.get_ref().to_string());
        }
        all
    }

    pub fn string(&mut self, d: &mut Diag, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{} must be a string, found {}",
                        self.qualify(key),
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, d: &mut Diag, key: &str) -> Option<Spanned<bool>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(v.span(), *b)),
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{} must be true or false, found {}",
                        self.qualify(key),
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A whole number from `min` to `max`.
    pub fn integer(&mut self, d: &mut Diag, key: &str, min: i64, max: i64) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (min..=max).contains(&n) => Some(Spanned::new(v.span(), n)),
                _ => {
                    d.error(
                        v.span(),
                        format!(
                            "{} must be a whole number from {min} to {max}, found {}",
                            self.qualify(key),
                            i.as_str()
                        ),
                    );
                    None
                }
            },
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{} must be a whole number, found {}",
                        self.qualify(key),
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A string, or a TOML datetime kept in its textual form.
    pub fn string_or_datetime(&mut self, d: &mut Diag, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            DeValue::Datetime(dt) => Some(Spanned::new(v.span(), dt.to_string())),
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{} must be a date-time such as 2026-11-02T00:00:00Z, found {}",
                        self.qualify(key),
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, d: &mut Diag, key: &str) -> Option<Vec<Spanned<String>>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                        other => d.error(
                            item.span(),
                            format!(
                                "{}[{i}] must be a string, found {}",
                                self.qualify(key),
                                type_name(other)
                            ),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{} must be an array of strings, found {}",
                        self.qualify(key),
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// An array of tables (`[[key]]` sections or `key = [{ ... }]`), each named `key[i]`.
    pub fn tables(&mut self, d: &mut Diag, key: &str) -> Option<Vec<Table<'t, 'i>>> {
        let v = self.get(key)?;
        let path = self.qualify(key);
        match v.get_ref() {
            DeValue::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| as_table(d, format!("{path}[{i}]"), item))
                    .collect(),
            ),
            other => {
                d.error(
                    v.span(),
                    format!(
                        "{path} must be an array of tables ([[{path}]]), found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    pub fn table(&mut self, d: &mut Diag, key: &str) -> Option<Table<'t, 'i>> {
        let v = self.get(key)?;
        let path = self.qualify(key);
        as_table(d, path, v)
    }

    /// Reports every key of this table that was never asked for.
    pub fn finish(self, d: &mut Diag) {
        for (k, _) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if !self.seen.iter().any(|s| s == name) {
                let what = if self.path.is_empty() {
                    format!("unknown key {name:?}")
                } else {
                    format!("unknown key {name:?} in [{}]", self.path)
                };
                d.error(k.span(), what);
            }
        }
    }
}

pub fn as_table<'t, 'i>(d: &mut Diag, path: String, v: &'t Value<'i>) -> Option<Table<'t, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Table::new(path, v.span(), t)),
        other => {
            d.error(
                v.span(),
                format!("{path} must be a table, found {}", type_name(other)),
            );
            None
        }
    }
}
