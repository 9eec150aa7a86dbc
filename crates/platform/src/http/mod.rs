//! Serving a service over HTTP: health, readiness, metrics, request metrics, errors in
//! JSON, and the client services use to call each other.

mod client_errors;
mod listener;
pub mod page;

pub use client_errors::{ErrorShape, ParseErrorsAsJson, json_client_errors};
pub use listener::{ConnectionLimits, PeerAddr, per_subscriber, serve};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::auth::{Claims, ServiceCredentials};
use crate::bus::Bus;
use crate::cache::Cache;
use crate::db::Database;
use crate::error::{ApiError, ApiResult, ErrorBody};

/// What a service needs reachable to be ready.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Dependency)>,
}

#[derive(Clone)]
enum Dependency {
    Database(Database),
    Bus(Bus),
    Cache(Cache),
}

impl Readiness {
    pub fn database(mut self, name: &str, db: &Database) -> Self {
        self.checks
            .push((name.to_owned(), Dependency::Database(db.clone())));
        self
    }
    pub fn bus(mut self, bus: &Bus) -> Self {
        self.checks
            .push(("bus".to_owned(), Dependency::Bus(bus.clone())));
        self
    }
    pub fn cache(mut self, cache: &Cache) -> Self {
        self.checks
            .push(("cache".to_owned(), Dependency::Cache(cache.clone())));
        self
    }
    pub fn merge(mut self, other: Readiness) -> Self {
        for check in other.checks {
            if !self.checks.iter().any(|(name, _)| *name == check.0) {
                self.checks.push(check);
            }
        }
        self
    }

    async fn report(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let mut all = true;
        let mut report = serde_json::Map::new();
        for (name, dep) in &self.checks {
            let check = async {
                match dep {
                    Dependency::Database(db) => db.ping().await,
                    Dependency::Bus(bus) => bus.consumers_ready() && bus.ping().await,
                    Dependency::Cache(cache) => cache.ping().await,
                }
            };
            let ok = tokio::time::timeout(Duration::from_secs(2), check)
                .await
                .unwrap_or(false);
            all &= ok;
            report.insert(name.clone(), if ok { "up" } else { "down" }.into());
        }
        (all, report)
    }
}

/// `/health`, `/ready` and `/metrics`.
pub fn observability_routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    let readiness = Arc::new(readiness);
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/ready",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    let (ok, checks) = readiness.report().await;
                    let status = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let body = serde_json::json!({
                        "status": if ok { "ready" } else { "not ready" },
                        "checks": checks,
                    });
                    (status, axum::Json(body))
                }
            }),
        )
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    crate::telemetry::prometheus().render(),
                )
            }),
        )
}

/// Records `http_requests_total` and `http_request_duration_seconds`, labelled by service,
/// method, route template (never the raw path) and status.
pub fn track_requests(router: Router, service: &'static str) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| async move {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "unmatched".to_owned());
            let method = method_label(req.method());
            let started = Instant::now();
            let incoming = req
                .headers()
                .get(crate::trace::HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answered = async {
                let response = next.run(req).await;
                tracing::debug!(method, route = %route, status = response.status().as_u16(), "answered");
                response
            };
            let response = crate::trace::continue_request(
                incoming.as_deref(),
                service,
                &format!("{method} {route}"),
                answered,
            )
            .await;
            let labels = [
                ("service", service.to_owned()),
                ("method", method.to_owned()),
                ("route", route),
                ("status", response.status().as_u16().to_string()),
            ];
            metrics::counter!("http_requests_total", &labels).increment(1);
            metrics::histogram!("http_request_duration_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
            response
        },
    ))
}

/// A request's method as a metric label: the standard ones by name, any other as `OTHER`
/// (methods are free text, and each label value is a time series).
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// A service's whole router: its API, the observability routes, request metrics, a body
/// limit, and client errors in the services' JSON shape.
pub fn service_router(service: &'static str, api: Router, readiness: Readiness) -> Router {
    shaped_router(service, api, readiness, ErrorShape::Service)
}

/// [`service_router`] with client errors in `shape`.
pub fn shaped_router(
    service: &'static str,
    api: Router,
    readiness: Readiness,
    shape: ErrorShape,
) -> Router {
    let router = api
        .merge(observability_routes(readiness))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024));
    track_requests(json_client_errors(router, shape), service)
}

/// Binds `addr`, naming the setting when the port is taken.
pub async fn bind(addr: std::net::SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::Error::new(crate::config::ConfigError::new(
            setting,
            format!("cannot listen on {addr}: {e}"),
        ))
    })
}

/// Calls to other services this process may have in flight at once; more wait their turn
/// (each holds a connection, and a request fanning out must not take every file
/// descriptor).
const MAX_IN_FLIGHT_CALLS: usize = 512;

async fn in_flight_slot() -> anyhow::Result<tokio::sync::SemaphorePermit<'static>> {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_IN_FLIGHT_CALLS);
    SLOTS
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("service calls closed: {e}"))
}

/// How one service calls another over HTTP: each call carries a service credential
/// naming the caller, the service called and the user it acts for.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    base: String,
    service: &'static str,
    credentials: ServiceCredentials,
    http: reqwest::Client,
}

impl ServiceClient {
    /// A client of `service` at `base`, signing as `credentials`' service.
    pub fn new(
        credentials: &ServiceCredentials,
        service: &'static str,
        base: &str,
    ) -> ServiceClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        ServiceClient {
            base: base.trim_end_matches('/').to_owned(),
            service,
            credentials: credentials.clone(),
            http,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The service this client calls.
    pub fn service(&self) -> &'static str {
        self.service
    }

    pub async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        self.send(self.http.delete(self.url(path)), acting).await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        self.send(self.http.get(self.url(path)), acting).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        self.send(self.http.post(self.url(path)).json(body), acting)
            .await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        self.send(self.http.put(self.url(path)).json(body), acting)
            .await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        self.send(self.http.patch(self.url(path)).json(body), acting)
            .await
    }

    /// Passes a request through unchanged (status, content type and body come back as they
    /// are), for pages a service renders itself.
    pub async fn pass_through(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Response> {
        let _slot = in_flight_slot().await?;
        let response = traced(self.http.request(method, self.url(path_and_query)))
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("calling the {} service failed: {e}", self.service))?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = response.bytes().await?;
        Ok((
            status,
            [(axum::http::header::CONTENT_TYPE, content_type)],
            bytes,
        )
            .into_response())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        acting: Option<&Claims>,
    ) -> ApiResult<T> {
        let request = traced(request.bearer_auth(self.credentials.issue(self.service, acting)?));
        let _slot = in_flight_slot().await?;
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("calling the {} service failed: {e}", self.service))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| anyhow::anyhow!("reading {} response: {e}", self.service))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!(
                    "{} answered unexpected JSON: {e}",
                    self.service
                ))
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) if body.code != crate::ErrorCode::Internal => Err(body.into()),
            _ => Err(ApiError::Unexpected(anyhow::anyhow!(
                "{} answered {status}: {}",
                self.service,
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }
}

/// A JSON 2xx response with a status.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// A service ready to serve: its router, what it needs to be ready, its background tasks.
pub struct BuiltService {
    pub name: &'static str,
    pub router: Router,
    /// How its errors look (the gateway's are GraphQL's).
    pub error_shape: ErrorShape,
    /// What its connections may hold.
    pub connections: ConnectionLimits,
    pub readiness: Readiness,
    /// Its dead letters, for an admin in the same process (the gateway) to manage
    /// directly; None for a service that consumes nothing.
    pub dead_letters: Option<crate::deadletters::DeadLetterAdmin>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A call to another service goes in the current trace.
fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match crate::trace::outgoing() {
        Some(traceparent) => request.header(crate::trace::HEADER, traceparent),
        None => request,
    }
}
