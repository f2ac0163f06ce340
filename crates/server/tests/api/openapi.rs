//! `GET /openapi.json`: a valid OpenAPI 3.1 document, a superset of Telnyx's own description of
//! its OAuth operations, and a faithful list of what the router serves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::TestApp;

/// Telnyx's published description of its OAuth operations (see tests/fixtures/README.md).
const TELNYX: &str = include_str!("../fixtures/telnyx-openapi-oauth.yaml");

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every route the router serves, `(method, path)`, at the root. All but the root-only ones
/// are also mounted under `/v2`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/.well-known/oauth-authorization-server"),
    (
        "get",
        "/.well-known/oauth-authorization-server/{issuer_path}",
    ),
    ("get", "/.well-known/oauth-protected-resource"),
    (
        "get",
        "/.well-known/oauth-protected-resource/{resource_path}",
    ),
    ("get", "/oauth/authorize"),
    ("get", "/oauth/consent/{consent_token}"),
    ("post", "/oauth/grants"),
    ("post", "/oauth/introspect"),
    ("get", "/oauth/jwks"),
    ("post", "/oauth/register"),
    ("get", "/oauth/register/{client_id}"),
    ("put", "/oauth/register/{client_id}"),
    ("delete", "/oauth/register/{client_id}"),
    ("post", "/oauth/revoke"),
    ("post", "/oauth/token"),
    ("get", "/oauth_clients"),
    ("post", "/oauth_clients"),
    ("get", "/oauth_clients/{id}"),
    ("put", "/oauth_clients/{id}"),
    ("delete", "/oauth_clients/{id}"),
    ("get", "/oauth_grants"),
    ("get", "/oauth_grants/{id}"),
    ("delete", "/oauth_grants/{id}"),
    ("get", "/consent"),
    ("get", "/login"),
    ("post", "/login"),
    ("get", "/logout"),
    ("post", "/logout"),
    ("get", "/"),
    ("get", "/assets/oauth.css"),
    ("get", "/account/apps"),
    ("post", "/account/apps/{grant_id}/revoke"),
    ("get", "/account/password"),
    ("post", "/account/password"),
    ("post", "/account/sessions/sign-out-others"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

const ROOT_ONLY: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

/// Where this server deliberately answers differently from Telnyx's description, with why.
/// Each entry is `(operationId, status, field)`: a response field Telnyx lists and this server
/// does not send.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    // RFC 7591 §3.2.2: a registration error is `error` and `error_description` only
    // (docs/api.md, "error body").
    ("RegisterOAuthClient", "400", "invalid_fields"),
];

async fn served(app: &TestApp) -> (String, Value) {
    let r = app.http.get(app.at("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = r.text().await.unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    (text, json)
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                out.push((m.to_string(), path.clone(), op));
            }
        }
    }
    out
}

/// Follows `#/components/...` references; panics on one that does not resolve.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {r} does not resolve"));
    }
    v
}

/// The property paths a schema describes (`data`, `data.[]id`, ...), through references,
/// compositions, arrays and nullable unions.
fn fields(doc: &Value, schema: &Value, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    if depth > 8 {
        return;
    }
    let schema = resolve(doc, schema);
    for k in ["allOf", "oneOf", "anyOf"] {
        for s in schema
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            fields(doc, s, prefix, depth + 1, out);
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, s) in props {
            out.insert(format!("{prefix}{name}"));
            fields(doc, s, &format!("{prefix}{name}."), depth + 1, out);
        }
    }
    if let Some(items) = schema.get("items") {
        fields(doc, items, &format!("{prefix}[]"), depth + 1, out);
    }
}

fn content_fields(doc: &Value, content: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (ct, media) in content.as_object().into_iter().flatten() {
        let mut set = BTreeSet::new();
        if let Some(schema) = media.get("schema") {
            fields(doc, schema, "", 0, &mut set);
        }
        out.insert(ct.clone(), set);
    }
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = TestApp::spawn().await;
    let (text, doc) = served(&app).await;

    // The typed OpenAPI 3.1 model accepts it, and it says it is 3.1.
    let spec = oas3::from_json(&text).expect("parses as an OpenAPI 3.1 document");
    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1), "{version}");
    assert_eq!(spec.info.title, "oauth-server");
    assert!(!spec.info.version.is_empty());

    // Every reference resolves inside the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "schemas are shared by reference");
    for r in &refs {
        let _ = resolve(&doc, &serde_json::json!({ "$ref": r }));
    }

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        // Operation ids are unique.
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}"));
        assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        // Every response has a description (required by 3.1) and a status code key.
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{what} has responses");
        for (status, resp) in responses {
            assert!(
                status.len() == 3 && status.chars().all(|c| c.is_ascii_digit()),
                "{what}: status {status}"
            );
            assert!(resp["description"].is_string(), "{what} {status}");
        }
        // Every template variable is a required path parameter, and every path parameter is in
        // the template.
        let typed = spec
            .operation(&method.to_uppercase().parse().unwrap(), &path)
            .unwrap_or_else(|| panic!("{what} in the typed model"));
        let params = typed.parameters(&spec).unwrap();
        let template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        let declared: BTreeSet<String> = params
            .iter()
            .filter(|p| p.location == oas3::spec::ParameterIn::Path)
            .map(|p| {
                assert_eq!(p.required, Some(true), "{what}: {} is required", p.name);
                p.name.clone()
            })
            .collect();
        assert_eq!(template, declared, "{what}");
        // Security requirements name declared schemes; the management API takes a bearer
        // credential only (a session cookie is answered 401 there).
        let management = what.contains("/oauth_clients") || what.contains("/oauth_grants");
        for req in op["security"].as_array().into_iter().flatten() {
            for name in req.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "{what}: scheme {name}");
                assert!(!(management && name == "session"), "{what}: session");
            }
        }
    }
}

#[tokio::test]
async fn every_telnyx_operation_is_described_the_same_way() {
    let app = TestApp::spawn().await;
    let (_, ours) = served(&app).await;
    let telnyx: Value = yaml_serde::from_str(TELNYX).unwrap();
    let telnyx_paths = telnyx.as_object().unwrap();
    let mut count = 0;
    for (path, item) in telnyx_paths {
        for m in METHODS {
            let Some(theirs) = item.get(*m) else { continue };
            count += 1;
            let id = theirs["operationId"].as_str().unwrap();
            // Telnyx's paths are relative to `https://api.telnyx.com/v2`: this server serves
            // them at the root and under `/v2`.
            for (prefix, suffix) in [("", ""), ("/v2", "V2")] {
                let full = format!("{prefix}{path}");
                let what = format!("{} {full} ({id})", m.to_uppercase());
                let op = ours["paths"]
                    .get(&full)
                    .and_then(|i| i.get(*m))
                    .unwrap_or_else(|| panic!("{what} is missing"));
                assert_eq!(op["operationId"], format!("{id}{suffix}"), "{what}");

                // Parameters: the same names, places and requiredness.
                let params = |op: &Value, doc: &Value| -> BTreeSet<(String, String, bool)> {
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            let p = resolve(doc, p);
                            (
                                p["name"].as_str().unwrap().to_owned(),
                                p["in"].as_str().unwrap().to_owned(),
                                p["required"].as_bool().unwrap_or(false),
                            )
                        })
                        .collect()
                };
                assert_eq!(params(op, &ours), params(theirs, &telnyx), "{what}");

                // Request bodies: every content type Telnyx accepts, with every field.
                if let Some(body) = theirs.get("requestBody") {
                    let want = content_fields(&telnyx, &body["content"]);
                    let have = content_fields(&ours, &op["requestBody"]["content"]);
                    for (ct, fields) in &want {
                        let got = have
                            .get(ct)
                            .unwrap_or_else(|| panic!("{what}: request body {ct}"));
                        let missing: Vec<_> = fields.difference(got).collect();
                        assert!(missing.is_empty(), "{what}: request {ct} lacks {missing:?}");
                    }
                }

                // Responses: every status Telnyx lists, with its content types and every field.
                for (status, resp) in theirs["responses"].as_object().unwrap() {
                    let mine = op["responses"]
                        .get(status)
                        .unwrap_or_else(|| panic!("{what}: no {status} response"));
                    let want = content_fields(&telnyx, &resp["content"]);
                    let have = content_fields(&ours, &mine["content"]);
                    for (ct, fields) in &want {
                        let got = have
                            .get(ct)
                            .unwrap_or_else(|| panic!("{what} {status}: no {ct} content"));
                        let missing: Vec<_> = fields
                            .difference(got)
                            .filter(|f| !KNOWN_DIFFERENCES.contains(&(id, status.as_str(), f)))
                            .collect();
                        assert!(missing.is_empty(), "{what} {status} lacks {missing:?}");
                    }
                }
            }
        }
    }
    assert_eq!(count, 17, "Telnyx describes 17 OAuth operations");
}

/// The string to put for a template variable when probing a path.
fn probe_path(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                "probe".to_owned()
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_and_the_router_list_the_same_routes() {
    let app = TestApp::spawn().await;
    let (_, doc) = served(&app).await;

    let mut expected = BTreeSet::new();
    for (m, p) in ROUTES {
        expected.insert((m.to_string(), p.to_string()));
        if !ROOT_ONLY.contains(p) {
            // `/` nested under `/v2` is `/v2` itself.
            let v2 = format!("/v2{p}");
            expected.insert((m.to_string(), v2.trim_end_matches('/').to_owned()));
        }
    }
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    assert_eq!(documented, expected);

    // Every documented operation is served: the router's fallback (404 "no such endpoint") and
    // its 405 never answer it.
    for (method, path) in &documented {
        let url = app.at(&probe_path(path));
        let r = app
            .http
            .request(method.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path} is not routed: {status} {body}"
        );
    }

    // And the fallback does answer an undocumented path, so the check above can fail.
    let r = app.http.get(app.at("/oauth/nothing")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().contains("no such endpoint"));
    let r = app.http.put(app.at("/oauth/token")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
}
