//! Validation of HTTP traffic and webhook payloads against GitHub's OpenAPI description.
//!
//! Sources (both OpenAPI 3.0.3, both cut from npm `@octokit/openapi` 23.0.2):
//! - `../shared/conformance/github-openapi/github-app-subset.openapi.json` (shared, read-only);
//! - `tests/fixtures/github-openapi-extra.json` (operations and webhooks the subset lacks; see
//!   `tests/fixtures/README.md`).
//!
//! The two are merged (paths, `x-webhooks`, components) and every schema is converted from
//! OpenAPI 3.0 to JSON Schema 2020-12 before it reaches the `jsonschema` crate:
//! `nullable: true` becomes a `"null"` type (or an `anyOf` with `{"type":"null"}` when the schema
//! has no `type`), siblings of `$ref` are dropped (OpenAPI 3.0 ignores them), boolean
//! `exclusiveMinimum`/`exclusiveMaximum` become numeric, and `x-*`, `discriminator`, `example`,
//! `xml` and `externalDocs` are removed. Formats are checked (`date-time` matters: octocrab parses
//! it), except `uri`, `uri-template` and `email`, which GitHub's own payloads do not always honour.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// One operation of the description: method, path template, operationId and its raw object.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub template: String,
    pub operation_id: String,
    segments: Vec<Segment>,
    /// Parameters (path-level and operation-level, `$ref`s resolved), raw OpenAPI.
    parameters: Vec<Value>,
    /// Request body schema (raw OpenAPI) for `application/json`, and whether the body is required.
    request_body: Option<(Value, bool)>,
    /// Responses by status code (`"200"`, `"default"`), raw OpenAPI.
    responses: Map<String, Value>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
}

/// The merged, converted description plus a cache of compiled validators.
pub struct OpenApi {
    components: Value,
    operations: Vec<Operation>,
    /// webhook name (e.g. `issues-labeled`) -> body schema (raw OpenAPI, usually a `$ref`).
    webhooks: BTreeMap<String, Value>,
    cache: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Path of the conformance data: `LEVER_CONFORMANCE_DIR` when set (e.g. to check the skip
/// path with a missing directory); else `<CARGO_MANIFEST_DIR>/../shared/conformance` when it
/// exists (the shared, fuller copy: the whole botocore model, among others); else the
/// redistributable extract committed in `tests/fixtures/conformance` (see its `README.md`),
/// so a fresh clone runs every suite.
pub fn conformance_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("LEVER_CONFORMANCE_DIR") {
        return d.into();
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    if shared.is_dir() {
        return shared;
    }
    fixtures_dir().join("conformance")
}

/// Path of this crate's own fixtures (`tests/fixtures`).
pub fn fixtures_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The process-wide description, or `None` when the conformance data is absent.
/// Panics when the files exist but cannot be read or parsed (that is a broken checkout).
pub fn spec() -> Option<&'static OpenApi> {
    static SPEC: OnceLock<Option<OpenApi>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let subset = conformance_dir().join("github-openapi/github-app-subset.openapi.json");
        if !subset.exists() {
            return None;
        }
        let extra = fixtures_dir().join("github-openapi-extra.json");
        Some(OpenApi::load(&subset, &extra).unwrap_or_else(|e| panic!("loading OpenAPI: {e}")))
    })
    .as_ref()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl OpenApi {
    /// Load and merge the subset and the extra file.
    pub fn load(subset: &Path, extra: &Path) -> Result<OpenApi, String> {
        let mut docs = vec![read_json(subset)?];
        if extra.exists() {
            docs.push(read_json(extra)?);
        }
        for doc in &mut docs {
            apply_errata(doc);
        }
        let mut components = Map::new();
        let mut operations = Vec::new();
        let mut webhooks = BTreeMap::new();
        for doc in &docs {
            if let Some(comp) = doc.get("components").and_then(Value::as_object) {
                for (section, items) in comp {
                    let entry = components
                        .entry(section.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let (Some(dst), Some(src)) = (entry.as_object_mut(), items.as_object()) {
                        for (k, v) in src {
                            dst.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        let components = Value::Object(components);
        for doc in &docs {
            if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
                for (template, item) in paths {
                    let shared_params: Vec<Value> = item
                        .get("parameters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for (method, op) in item.as_object().into_iter().flatten() {
                        if method == "parameters" || !op.is_object() {
                            continue;
                        }
                        operations.push(Self::operation(
                            &components,
                            method,
                            template,
                            op,
                            &shared_params,
                        )?);
                    }
                }
            }
            if let Some(hooks) = doc.get("x-webhooks").and_then(Value::as_object) {
                for (name, item) in hooks {
                    let schema = item
                        .pointer("/post/requestBody/content/application~1json/schema")
                        .cloned()
                        .ok_or_else(|| format!("webhook {name}: no JSON body schema"))?;
                    webhooks.insert(name.clone(), schema);
                }
            }
        }
        Ok(OpenApi {
            components: convert_components(&components),
            operations,
            webhooks,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn operation(
        components: &Value,
        method: &str,
        template: &str,
        op: &Value,
        shared_params: &[Value],
    ) -> Result<Operation, String> {
        let mut parameters = Vec::new();
        for p in shared_params.iter().chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        ) {
            parameters.push(resolve_ref(components, p)?);
        }
        let request_body = match op.get("requestBody") {
            Some(rb) => {
                let rb = resolve_ref(components, rb)?;
                let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                rb.pointer("/content/application~1json/schema")
                    .cloned()
                    .map(|s| (s, required))
            }
            None => None,
        };
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param(s[1..s.len() - 1].to_string())
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        Ok(Operation {
            method: method.to_ascii_uppercase(),
            template: template.to_string(),
            operation_id: op
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            segments,
            parameters,
            request_body,
            responses: op
                .get("responses")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// All operations (merged subset + extra).
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Names of all webhook definitions (`issues-labeled`, …).
    pub fn webhook_names(&self) -> impl Iterator<Item = &str> {
        self.webhooks.keys().map(String::as_str)
    }

    /// Find the operation for `method` + `path` (path without query, percent-encoded as sent).
    /// The most specific template (most literal segments) wins. Returns decoded path params.
    pub fn find_operation(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&Operation, BTreeMap<String, String>)> {
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let mut best: Option<(&Operation, BTreeMap<String, String>, usize)> = None;
        for op in &self.operations {
            if !op.method.eq_ignore_ascii_case(method) {
                continue;
            }
            // GitHub's repository file paths (`/contents/{path}`) span segments: a final
            // `{path}` takes the rest of the path, slashes included.
            let parts: Vec<String> = match op.segments.last() {
                Some(Segment::Param(name)) if name == "path" && parts.len() > op.segments.len() => {
                    let n = op.segments.len() - 1;
                    let mut head = parts[..n].to_vec();
                    head.push(parts[n..].join("/"));
                    head
                }
                _ => parts.clone(),
            };
            if op.segments.len() != parts.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            let mut literals = 0;
            let ok = op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                Segment::Literal(l) => {
                    literals += 1;
                    l == part
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), part.clone());
                    !part.is_empty()
                }
            });
            if ok && best.as_ref().is_none_or(|b| literals > b.2) {
                best = Some((op, params, literals));
            }
        }
        best.map(|(op, params, _)| (op, params))
    }

    /// Validate a request. Returns human-readable problems (empty = conforming).
    pub fn validate_request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Vec<String> {
        let Some((op, path_params)) = self.find_operation(method, path) else {
            return vec![format!(
                "no operation for {method} {path} in the OpenAPI description"
            )];
        };
        let mut problems = Vec::new();
        let query_params = parse_query(query);
        for p in &op.parameters {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let schema = p.get("schema").cloned().unwrap_or(json!({}));
            let raw = match location {
                "path" => path_params.get(name).cloned(),
                "query" => query_params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
                _ => continue,
            };
            match raw {
                None if required => {
                    problems.push(format!("missing required {location} parameter `{name}`"))
                }
                None => {}
                Some(raw) => {
                    let value = coerce_param(&raw, &schema);
                    for e in self.validate_value(&schema, &value) {
                        problems.push(format!("{location} parameter `{name}`={raw:?}: {e}"));
                    }
                }
            }
        }
        for (k, _) in &query_params {
            let declared = op.parameters.iter().any(|p| {
                p.get("in").and_then(Value::as_str) == Some("query")
                    && p.get("name").and_then(Value::as_str) == Some(k.as_str())
            });
            if !declared {
                problems.push(format!(
                    "query parameter `{k}` is not declared for {}",
                    op.operation_id
                ));
            }
        }
        let body_is_empty = body.iter().all(u8::is_ascii_whitespace);
        match (&op.request_body, body_is_empty) {
            (Some((_, true)), true) => problems.push("request body is required".to_string()),
            (Some((schema, _)), false) => match serde_json::from_slice::<Value>(body) {
                Ok(v) => {
                    for e in self.validate_value(schema, &v) {
                        problems.push(format!("request body: {e}"));
                    }
                }
                Err(e) => problems.push(format!("request body is not JSON: {e}")),
            },
            (None, false) => problems.push(format!("{} takes no request body", op.operation_id)),
            _ => {}
        }
        problems
            .into_iter()
            .map(|p| format!("{} {}: {p}", op.method, op.template))
            .collect()
    }

    /// Validate a response body for an operation found with [`OpenApi::find_operation`].
    /// A 2xx status that the description does not list is a problem; error statuses that it
    /// does not list are checked against `basic-error` (GitHub omits 401s from most operations).
    pub fn validate_response(&self, op: &Operation, status: u16, body: &[u8]) -> Vec<String> {
        let key = status.to_string();
        let documented = op
            .responses
            .get(&key)
            .or_else(|| op.responses.get("default"));
        let schema = match documented {
            Some(r) => match resolve_ref(&self.components, r) {
                Ok(r) => r.pointer("/content/application~1json/schema").cloned(),
                Err(e) => return vec![e],
            },
            None if (200..300).contains(&status) => {
                return vec![format!(
                    "{} {}: status {status} is not documented",
                    op.method, op.template
                )];
            }
            None => Some(json!({"$ref": "#/components/schemas/basic-error"})),
        };
        let schema = match schema {
            // GitHub documents many error statuses without a body but sends `basic-error`.
            None if status >= 400 => Some(json!({"$ref": "#/components/schemas/basic-error"})),
            s => s,
        };
        let Some(schema) = schema else {
            return if body.iter().all(u8::is_ascii_whitespace) {
                vec![]
            } else {
                vec![format!(
                    "{} {}: status {status} has no body in the description",
                    op.method, op.template
                )]
            };
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => self
                .validate_value(&schema, &v)
                .into_iter()
                .map(|e| format!("{} {} → {status}: {e}", op.method, op.template))
                .collect(),
            Err(e) => vec![format!(
                "{} {} → {status}: body is not JSON: {e}",
                op.method, op.template
            )],
        }
    }

    /// Validate a webhook body against `x-webhooks/<name>` (e.g. `issues-labeled`).
    pub fn validate_webhook(&self, name: &str, payload: &Value) -> Vec<String> {
        match self.webhooks.get(name) {
            Some(schema) => self.validate_value(schema, payload),
            None => vec![format!("no webhook definition `{name}`")],
        }
    }

    /// A component schema by name (e.g. `app-permissions`), converted to JSON Schema.
    pub fn schema_component(&self, name: &str) -> Option<&Value> {
        self.components.get("schemas").and_then(|s| s.get(name))
    }

    /// Validate `value` against a component schema by name (e.g. `issue`).
    pub fn validate_component(&self, name: &str, value: &Value) -> Vec<String> {
        self.validate_value(
            &json!({"$ref": format!("#/components/schemas/{name}")}),
            value,
        )
    }

    /// Validate against an (unconverted) OpenAPI schema object. Validators are cached.
    pub fn validate_value(&self, schema: &Value, value: &Value) -> Vec<String> {
        let key = schema.to_string();
        let validator = {
            let mut cache = self.cache.lock().unwrap();
            if let Some(v) = cache.get(&key) {
                v.clone()
            } else {
                let mut root = match convert_schema(schema) {
                    Value::Object(m) => m,
                    other => {
                        let mut m = Map::new();
                        m.insert("allOf".into(), json!([other]));
                        m
                    }
                };
                root.insert(
                    "$schema".into(),
                    json!("https://json-schema.org/draft/2020-12/schema"),
                );
                root.insert("components".into(), self.components.clone());
                let compiled = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .with_format("uri", |_: &str| true)
                    .with_format("uri-template", |_: &str| true)
                    .with_format("email", |_: &str| true)
                    .build(&Value::Object(root))
                    .unwrap_or_else(|e| panic!("compiling schema {key:.200}: {e}"));
                let compiled = Arc::new(compiled);
                cache.insert(key, compiled.clone());
                compiled
            }
        };
        validator
            .iter_errors(value)
            .take(20)
            .map(|e| truncate(describe(&e, 0), 600))
            .collect()
    }
}

/// An error message without the (possibly huge) instance, with the reasons of failed
/// `anyOf`/`oneOf` branches.
fn describe(e: &jsonschema::ValidationError, depth: usize) -> String {
    let mut msg = format!("at `{}`: {}", e.instance_path(), e.masked());
    if let jsonschema::error::ValidationErrorKind::AnyOf { context }
    | jsonschema::error::ValidationErrorKind::OneOfNotValid { context } = e.kind()
        && depth < 2
    {
        let branches: Vec<String> = context
            .iter()
            .enumerate()
            .map(|(i, errs)| {
                let inner: Vec<String> = errs
                    .iter()
                    .take(12)
                    .map(|x| describe(x, depth + 1))
                    .collect();
                format!("branch {i}: {}", inner.join("; "))
            })
            .collect();
        msg.push_str(&format!(" [{}]", branches.join(" | ")));
    }
    msg
}

fn truncate(mut msg: String, max: usize) -> String {
    if msg.len() > max {
        let mut cut = max;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    msg
}

/// Known mistakes in GitHub's description that no real response could satisfy, corrected at
/// load time (the files on disk stay verbatim):
/// - `GET /app/installations`: the inline `account` schema is `allOf: [Simple User, Enterprise]`
///   (an account would have to be both); the `installation` component says `anyOf`. → `anyOf`.
pub const ERRATA: &[(&str, &str)] = &[(
    "/paths/~1app~1installations/get/responses/200/content/application~1json/schema/items/properties/account",
    "allOf→anyOf",
)];

fn apply_errata(doc: &mut Value) {
    for (pointer, fix) in ERRATA {
        if let (Some(Value::Object(node)), &"allOf→anyOf") = (doc.pointer_mut(pointer), fix)
            && let Some(all) = node.remove("allOf")
        {
            node.insert("anyOf".into(), all);
        }
    }
}

/// Resolve a `#/components/...` reference (one level deep, repeated) against the raw components.
fn resolve_ref(components: &Value, node: &Value) -> Result<Value, String> {
    let mut node = node.clone();
    for _ in 0..8 {
        let Some(r) = node.get("$ref").and_then(Value::as_str) else {
            return Ok(node);
        };
        let Some(rest) = r.strip_prefix("#/components/") else {
            return Err(format!("unsupported $ref {r}"));
        };
        let pointer = format!("/{rest}");
        node = components
            .pointer(&pointer)
            .cloned()
            .ok_or_else(|| format!("unresolved $ref {r}"))?;
    }
    Err("too many nested $refs".into())
}

fn convert_components(components: &Value) -> Value {
    let mut out = components.clone();
    if let Some(schemas) = out.get_mut("schemas").and_then(Value::as_object_mut) {
        for v in schemas.values_mut() {
            *v = convert_schema(v);
        }
    }
    // Schemas nested in responses/parameters/headers are reached through `$ref` only via
    // `#/components/schemas`, but convert them too so every path through the document is 2020-12.
    for section in ["responses", "parameters", "headers"] {
        if let Some(items) = out.get_mut(section).and_then(Value::as_object_mut) {
            for item in items.values_mut() {
                convert_nested_schemas(item);
            }
        }
    }
    out
}

fn convert_nested_schemas(node: &mut Value) {
    match node {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "schema" {
                    *v = convert_schema(v);
                } else {
                    convert_nested_schemas(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(convert_nested_schemas),
        _ => {}
    }
}

/// Convert one OpenAPI 3.0 schema object (recursively) into JSON Schema 2020-12.
pub fn convert_schema(schema: &Value) -> Value {
    let Value::Object(src) = schema else {
        return schema.clone();
    };
    if let Some(r) = src.get("$ref") {
        return json!({"$ref": r});
    }
    let mut out = Map::new();
    for (k, v) in src {
        if k.starts_with("x-")
            || matches!(
                k.as_str(),
                "nullable" | "discriminator" | "example" | "xml" | "externalDocs" | "examples"
            )
        {
            continue;
        }
        let converted = match k.as_str() {
            "properties" | "patternProperties" => Value::Object(
                v.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(n, s)| (n.clone(), convert_schema(s)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => convert_schema(v),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(convert_schema).collect())
                    .unwrap_or_default(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(b)) = out.get(flag).cloned() {
            out.remove(flag);
            if b && let Some(n) = out.remove(bound) {
                out.insert(flag.into(), n);
            }
        }
    }
    if src.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::Array(e)) = out.get_mut("enum")
            && !e.contains(&Value::Null)
        {
            e.push(Value::Null);
        }
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(mut ts)) => {
                if !ts.contains(&json!("null")) {
                    ts.push(json!("null"));
                }
                out.insert("type".into(), Value::Array(ts));
            }
            _ => {
                return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
            }
        }
    }
    Value::Object(out)
}

/// Turn a query/path parameter string into the JSON type its schema expects (so that
/// `per_page=abc` fails an `integer` schema and `per_page=10` passes).
fn coerce_param(raw: &str, schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_string())),
        Some("number") => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(raw.to_string())),
        Some("boolean") => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        Some("array") => Value::Array(
            raw.split(',')
                .map(|s| coerce_param(s, schema.get("items").unwrap_or(&Value::Null)))
                .collect(),
        ),
        _ => Value::String(raw.to_string()),
    }
}

/// Parse an `application/x-www-form-urlencoded` query string.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decode `%XX` escapes (invalid escapes are kept verbatim).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode a path segment (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
