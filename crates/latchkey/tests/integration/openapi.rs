//! The served OpenAPI document: valid OpenAPI 3.1, every error response in the
//! RFC 6749 shape, and exactly the OAuth and JSON API routes the server has:
//! the routers' source names them (compared both ways), and the running
//! server answers every documented operation and refuses every other method.

use crate::backend_tests;
use crate::support::*;
use latchkey_proto::paths;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The routers of the documented surfaces, as the server crate builds them.
const ROUTERS: [(&str, &str); 2] = [
    ("oauth", include_str!("../../../latchkey-server/src/routes/oauth/mod.rs")),
    ("api", include_str!("../../../latchkey-server/src/routes/api/mod.rs")),
];
/// The one list of paths the routers register.
const PATHS_SOURCE: &str = include_str!("../../../latchkey-proto/src/paths.rs");

/// Routes of those routers that are deliberately not in the document: HTML
/// pages and the forms they post (the authorization and logout endpoints
/// answer browsers), and the JSON 404 for unknown API paths.
const UNDOCUMENTED: [&str; 7] = [
    paths::AUTHORIZE,
    paths::AUTHORIZE_SIGN_IN,
    paths::AUTHORIZE_CONSENT,
    paths::AUTHORIZE_PASSKEY,
    paths::END_SESSION,
    paths::END_SESSION_CONFIRM,
    paths::API_OTHER,
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `NAME -> "/path"` for every string constant of `paths.rs`.
fn path_constants() -> BTreeMap<String, String> {
    PATHS_SOURCE
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const ")?.split_once(": &str = \""))
        .filter_map(|(name, rest)| Some((name.to_string(), rest.strip_suffix("\";")?.to_string())))
        .collect()
}

/// The `(path, METHOD)` pairs the routers register: each `.route(paths::NAME, get(..).post(..))`.
fn routed() -> BTreeSet<(String, String)> {
    let consts = path_constants();
    let mut out = BTreeSet::new();
    for (router, source) in ROUTERS {
        for call in source.split(".route(").skip(1) {
            // The call's arguments end where its parenthesis closes.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(call.len(), |(i, _)| i);
            let call = &call[..end];
            let (name, handlers) = call.split_once(',').unwrap_or_else(|| panic!("{router}: odd route {call:?}"));
            let name = name.trim().strip_prefix("paths::").unwrap_or_else(|| {
                panic!("{router}: route {name:?} is not a paths:: constant; register routes from latchkey_proto::paths")
            });
            let path = consts.get(name).unwrap_or_else(|| panic!("paths::{name} is not a string constant of paths.rs"));
            if UNDOCUMENTED.contains(&path.as_str()) {
                continue;
            }
            // Each method router is an identifier right before a `(`: `get(`, `.post(`.
            let mut methods = 0;
            let pieces: Vec<&str> = handlers.split('(').collect();
            for piece in &pieces[..pieces.len() - 1] {
                let word = piece.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
                assert_ne!(
                    word, "any",
                    "{router}: {path} takes any method; list it in UNDOCUMENTED or name its methods"
                );
                let method = word.to_ascii_uppercase();
                if METHODS.contains(&method.as_str()) {
                    out.insert((path.clone(), method));
                    methods += 1;
                }
            }
            assert!(methods > 0, "{router}: found no method for {path} in {handlers:?}");
        }
    }
    out
}

/// The `(path, METHOD)` pairs the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for key in item.as_object().expect("a path item").keys() {
            let method = key.to_ascii_uppercase();
            if METHODS.contains(&method.as_str()) || ["HEAD", "OPTIONS", "TRACE"].contains(&method.as_str()) {
                out.insert((path.clone(), method));
            }
        }
    }
    out
}

/// Every `$ref` in the document points at something in it.
fn check_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r}: only local references"));
                assert!(doc.pointer(pointer).is_some(), "{r} points at nothing");
            }
            m.values().for_each(|v| check_refs(doc, v));
        }
        Value::Array(a) => a.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}

async fn fetch_document(app: &TestApp) -> (String, Value) {
    let resp = reqwest::get(format!("{}{}", app.url, paths::OPENAPI)).await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("content-type").expect("content-type"), "application/json");
    let text = resp.text().await.expect("body");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    (text, doc)
}

async fn document_is_valid_openapi_3_1(b: Backend) {
    let app = spawn_app(b).await;
    let (text, doc) = fetch_document(&app).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "openapi: {version}");

    // The typed model of OpenAPI 3.1: every object has its required fields and types.
    let spec = oas3::from_json(&text).expect("a structurally valid OpenAPI 3.1 document");
    spec.validate_version().expect("a supported version");
    check_refs(&doc, &doc);
    let mut ids = BTreeSet::new();
    for (path, method, op) in spec.operations() {
        let what = format!("{method} {path}");
        let id = op.operation_id.clone().unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(ids.insert(id), "{what}: operationId used twice");
        op.parameters(&spec).unwrap_or_else(|e| panic!("{what}: parameters: {e}"));
        op.request_body(&spec).unwrap_or_else(|e| panic!("{what}: request body: {e}"));
        let responses = op.responses(&spec);
        assert!(responses.keys().any(|s| s.starts_with('2')), "{what}: no success response");
        // Every error it lists is the RFC 6749 error body, as JSON.
        let errors: Vec<_> = responses.iter().filter(|(s, _)| s.starts_with('4') || s.starts_with('5')).collect();
        let takes_input = op.request_body.is_some() || !op.parameters.is_empty() || !op.security.is_empty();
        assert!(!takes_input || !errors.is_empty(), "{what}: takes input or credentials but lists no error response");
        for (status, r) in errors {
            let media = r.content.get("application/json").unwrap_or_else(|| panic!("{what} {status}: not JSON"));
            let schema = media.schema.as_ref().unwrap_or_else(|| panic!("{what} {status}: no schema"));
            match schema {
                oas3::spec::Schema::Object(o) => match o.as_ref() {
                    oas3::spec::ObjectOrReference::Ref { ref_path, .. } => {
                        assert_eq!(ref_path, "#/components/schemas/Error", "{what} {status}")
                    }
                    _ => panic!("{what} {status}: the error schema is not #/components/schemas/Error"),
                },
                _ => panic!("{what} {status}: the error schema is not #/components/schemas/Error"),
            }
        }
        // The operations that need a caller say how to authenticate.
        for requirement in &op.security {
            for scheme in requirement.0.keys() {
                assert!(doc["components"]["securitySchemes"].get(scheme).is_some(), "{what}: unknown scheme {scheme}");
            }
        }
    }
    for scheme in ["bearer", "dpop", "clientSecretBasic"] {
        assert!(doc["components"]["securitySchemes"].get(scheme).is_some(), "no {scheme} security scheme");
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    assert_eq!(error["properties"]["error"]["type"], "string");
    assert_eq!(error["properties"]["error_description"]["type"], "string");
}

async fn document_lists_exactly_the_routes(b: Backend) {
    let app = spawn_app(b).await;
    let (_, doc) = fetch_document(&app).await;
    let documented = documented(&doc);
    let routed = routed();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "crates/latchkey-server/openapi.json is out of date.\n  routed but not documented: {missing:?}\n  documented but not routed: {extra:?}"
    );

    // The running server agrees: each documented operation is answered (a
    // refusal for want of credentials or a body, never "no such endpoint" or
    // a wrong method), and each other method on its path is a 405.
    let http = reqwest::Client::new();
    let fill = |p: &str| p.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
    let by_path: BTreeMap<&str, BTreeSet<&str>> = documented.iter().fold(BTreeMap::new(), |mut m, (p, meth)| {
        m.entry(p.as_str()).or_default().insert(meth.as_str());
        m
    });
    for (path, methods) in by_path {
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let resp = http.request(m, format!("{}{}", app.url, fill(path))).send().await.expect("send");
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            if methods.contains(method) {
                assert_ne!(status, 405, "{method} {path} is documented but refused as a wrong method");
                assert!(
                    !(status == 404 && body.contains("no such") && body.contains("endpoint")),
                    "{method} {path} is documented but not served: {body}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented: {body}");
            }
        }
    }
}

/// An error answer in the one shape: JSON, `error` and `error_description` strings.
async fn error_shape(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = resp.text().await.expect("body");
    assert_eq!(content_type, "application/json", "{status} {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert!(body["error_description"].is_string(), "{text}");
    (status, body["error"].as_str().expect("error").to_string())
}

// Found by scripts/schemathesis.sh: a path segment that is not UTF-8 once
// percent-decoded was refused by axum's own extractor, in plain text.
async fn undecodable_path_segments_get_the_error_shape(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let http = reqwest::Client::new();
    let cases = [
        (reqwest::Method::GET, "/api/v1/devices/%FF/locations"),
        (reqwest::Method::DELETE, "/api/v1/sign-ins/%C3%28"),
        (reqwest::Method::PUT, "/api/v1/events/kinds/%FE"),
    ];
    for (method, path) in cases {
        let resp = http.request(method, format!("{}{path}", app.url)).bearer_auth(&session).send().await.expect("send");
        assert_eq!(error_shape(resp).await, (400, "invalid_request".to_string()), "{path}");
    }
}

// Found by scripts/schemathesis.sh: the channel's cursor was read with axum's
// query extractor, which refuses in plain text, instead of the server's own.
async fn channel_refuses_a_bad_cursor_in_the_error_shape(b: Backend) {
    let app = spawn_app(b).await;
    let tokens = app.login("alice", "").await;
    let resp = reqwest::Client::new()
        .get(format!("{}{}?after=soon", app.url, paths::CHANNEL))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .expect("send");
    assert_eq!(error_shape(resp).await, (400, "invalid_request".to_string()));
}

backend_tests!(
    document_is_valid_openapi_3_1,
    document_lists_exactly_the_routes,
    undecodable_path_segments_get_the_error_shape,
    channel_refuses_a_bad_cursor_in_the_error_shape,
);
