//! A scripted local HTTP server: it records every request and answers each with what the test's
//! responder returns. Used only where the real server cannot be made to misbehave on demand.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query decoded into pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: None,
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: None,
        }
    }

    /// An error in the contract's shape.
    pub fn error(status: u16, code: &str) -> Self {
        Reply::json(
            status,
            serde_json::json!({"error": code, "error_description": format!("scripted {status}")}),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Responder = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct MockState {
    responder: Arc<Responder>,
    log: Arc<Mutex<Vec<Recorded>>>,
}

pub struct Mock {
    pub url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Mock {
    /// Starts a server whose answer to the n-th request (0 first) is `respond(request, n)`.
    pub async fn start(
        respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = MockState {
            responder: Arc::new(respond),
            log: log.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock {
            url: format!("http://{addr}"),
            log,
        }
    }

    /// Answers requests with `replies` in order; the last one repeats.
    pub async fn scripted(replies: Vec<Reply>) -> Self {
        Mock::start(move |_, n| replies[n.min(replies.len() - 1)].clone()).await
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// A client for this mock with tiny backoff delays.
    pub fn client(&self) -> telnyx_oauth::ClientBuilder {
        telnyx_oauth::Client::builder()
            .api_key("KEYtest")
            .base_url(&self.url)
            .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
    }
}

async fn handle(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut log = state.log.lock().expect("log");
        log.push(recorded.clone());
        log.len() - 1
    };
    let reply = (state.responder)(&recorded, n);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(&v).expect("header value"),
        );
    }
    resp
}

/// An OAuth client as the API shows it.
pub fn client_json(id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "record_type": "oauth_client",
        "client_id": id,
        "client_secret": null,
        "name": name,
        "org_id": "org",
        "user_id": "user",
        "client_type": "confidential",
        "require_pkce": false,
        "allowed_grant_types": ["client_credentials"],
        "allowed_scopes": ["admin"],
        "redirect_uris": [],
        "logo_uri": null,
        "policy_uri": null,
        "tos_uri": null,
        "created_at": "2026-01-31T12:00:00Z",
        "updated_at": "2026-01-31T12:00:00Z"
    })
}

pub fn grant_json(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "record_type": "oauth_grant",
        "client_id": "client-1",
        "scopes": ["admin"],
        "created_at": "2026-01-31T12:00:00Z",
        "last_used_at": null
    })
}
