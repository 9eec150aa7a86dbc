//! The gateway's HTTP and WebSocket edge: who a request comes from, what it may spend,
//! which browser origins may call, and the routes the internet reaches.

pub mod budget;
pub mod client;
mod reset_page;
pub mod socket;

use std::sync::Arc;

use herald_users::accounts::AccountsApi;
use std::time::Duration;

use async_graphql::{BatchRequest, BatchResponse, ServerError};
use axum::body::{Bytes, to_bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use herald_platform::http::{ErrorShape, PeerAddr, ServiceClient};
use herald_platform::{ErrorCode, Settings};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::budget::{Budget, Spender};
use self::client::{ClientAddr, ClientAddrs};
use self::socket::{Connection, OpenSockets, Protocol};
use crate::graphiql;
use crate::identity::Identity;
use crate::operations::{Answer, Operations};

/// Operations one HTTP request may batch.
pub const MAX_BATCH: usize = 20;
/// How long a request's body may take to arrive once its headers have.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The edge's limits and what it needs to apply them.
pub struct Edge {
    pub identity: Identity,
    clients: ClientAddrs,
    client_budget: Option<Budget>,
    user_budget: Option<Budget>,
    sockets: Arc<OpenSockets>,
    pub socket_init_timeout: Duration,
    /// The largest body, and the largest WebSocket message.
    pub max_message: usize,
}

impl Edge {
    pub fn new(settings: &Settings, identity: Identity) -> Edge {
        Edge {
            identity,
            clients: ClientAddrs::new(settings.trusted_proxy_header.as_deref()),
            client_budget: Budget::per_minute(settings.rate_limit_client_per_minute),
            user_budget: Budget::per_minute(settings.rate_limit_user_per_minute),
            sockets: Arc::new(OpenSockets::new(settings.ws_connections_per_client)),
            socket_init_timeout: Duration::from_millis(settings.ws_init_timeout_ms),
            max_message: settings.max_body_bytes,
        }
    }

    pub fn client(&self, parts: &Parts) -> ClientAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<PeerAddr>>()
            .map(|c| &c.0);
        self.clients.of(peer, &parts.headers)
    }

    /// Charges `cost` more operations to each spender, whether or not they fit: the rest
    /// of a request that started within its budget.
    pub fn charge(&self, spenders: &[Spender], cost: u32) {
        if cost == 0 {
            return;
        }
        for spender in spenders {
            let budget = match spender {
                Spender::Client(_) => &self.client_budget,
                Spender::User(_) => &self.user_budget,
            };
            if let Some(budget) = budget {
                budget.charge(*spender, cost);
            }
        }
    }

    /// Spends `cost` operations of each spender's budget, or says how long to wait.
    pub fn spend(&self, spenders: &[Spender], cost: u32) -> Result<(), Duration> {
        for spender in spenders {
            let budget = match spender {
                Spender::Client(_) => &self.client_budget,
                Spender::User(_) => &self.user_budget,
            };
            if let Some(budget) = budget {
                budget.spend(*spender, cost).inspect_err(|_| {
                    let whose = match spender {
                        Spender::Client(_) => "client",
                        Spender::User(_) => "user",
                    };
                    metrics::counter!("gateway_rate_limited_total", "budget" => whose).increment(1);
                })?;
            }
        }
        Ok(())
    }
}

/// What the edge's handlers share.
#[derive(Clone)]
pub struct GatewayState {
    pub operations: Operations,
    pub edge: Arc<Edge>,
}

/// Where `/unsubscribe` (the links in emails) is answered.
pub enum UnsubscribePages {
    /// The notifications service's own pages, when it runs in this process.
    Here(Router),
    /// Passed through to the notifications service in another process.
    Apart(ServiceClient),
}

/// The public routes: GraphQL, the browser app, `/unsubscribe` answered as `unsubscribe`
/// says, and the page a password reset link opens.
pub fn routes(
    state: GatewayState,
    unsubscribe: UnsubscribePages,
    accounts: Arc<dyn AccountsApi>,
) -> Router {
    let reset = reset_page::router(accounts, state.edge.clone());
    let unsubscribe = match unsubscribe {
        UnsubscribePages::Here(pages) => pages,
        UnsubscribePages::Apart(notifications) => Router::new()
            .route("/unsubscribe", get(pass_unsubscribe).post(pass_unsubscribe))
            .with_state(notifications),
    };
    Router::new()
        .route("/graphql", get(graphiql_or_socket).post(graphql))
        .route("/graphql/ws", get(graphiql_or_socket))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .with_state(state)
        .merge(crate::web::routes())
        .merge(unsubscribe)
        .merge(reset)
}

/// The browser origins allowed to call, if any are configured.
pub fn cors(settings: &Settings) -> Option<CorsLayer> {
    let origins: Vec<&str> = settings.cors_origin_list().collect();
    if origins.is_empty() {
        return None;
    }
    let allowed = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// `POST /graphql`: one operation or a batch. The client and user budgets are spent
/// before the body is read (one operation, then the rest of a batch once it is known), so
/// a client over its budget costs no body; the body must arrive within
/// [`BODY_READ_TIMEOUT`].
/// The most an admin's GraphQL request may carry (when HERALD_MAX_BODY_BYTES is less): the
/// services take bodies up to this size too.
const ADMIN_BODY_BYTES: usize = 1024 * 1024;

async fn graphql(State(state): State<GatewayState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let edge = &state.edge;
    let client = edge.client(&parts);
    if !is_json(&parts) {
        return client_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as JSON (content-type: application/json)",
        );
    }
    let auth = edge.identity.authenticate(bearer(&parts)).await;
    let mut spenders = vec![Spender::client(client)];
    spenders.extend(auth.user_id().map(Spender::User));
    if let Err(wait) = edge.spend(&spenders, 1) {
        return rate_limited(wait);
    }
    // Admins may send more: an import of a thousand customers with their preferences.
    let limit = match auth.claims() {
        Some(claims) if claims.is_admin() => edge.max_message.max(ADMIN_BODY_BYTES),
        _ => edge.max_message,
    };
    let too_large = || {
        let mut response = client_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {limit} bytes (HERALD_MAX_BODY_BYTES)"),
        );
        // The rest of the body is not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large();
    }
    let body: Bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, to_bytes(body, limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if e.to_string().contains("length limit") => return too_large(),
        Ok(Err(_)) => {
            return client_error(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Err(_) => {
            return client_error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            );
        }
    };
    // An array is a batch; anything else one operation (serde would also read `[]` as an
    // operation whose fields are all absent).
    let parsed = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(&body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(&body).map(BatchRequest::Single)
    };
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            let mut message = format!("the body is not a GraphQL request: {e}");
            crate::limits::clip(&mut message);
            return client_error(StatusCode::BAD_REQUEST, &message);
        }
    };
    let operations = match &request {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    if operations == 0 {
        return client_error(StatusCode::BAD_REQUEST, "the batch holds no operation");
    }
    if operations > MAX_BATCH {
        return client_error(
            StatusCode::BAD_REQUEST,
            &format!("at most {MAX_BATCH} operations per batch"),
        );
    }
    let rest = u32::try_from(operations - 1).unwrap_or(u32::MAX);
    // The batch started within the budget; its other operations run the schedule ahead.
    edge.charge(&spenders, rest);
    let response = match request {
        BatchRequest::Single(request) => {
            let request = request.data(auth.clone()).data(client);
            match state.operations.answer(request, &auth).await {
                Answer::Response(response) => BatchResponse::Single(response),
                // Kept answers hold no errors, so no Retry-After either.
                Answer::Json(json) => {
                    return ([(header::CONTENT_TYPE, "application/json")], json).into_response();
                }
            }
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(
                    state
                        .operations
                        .execute(request.data(auth.clone()).data(client))
                        .await,
                );
            }
            BatchResponse::Batch(responses)
        }
    };
    let retry_after = responses(&response)
        .flat_map(|r| r.errors.iter())
        .filter_map(retry_after_of)
        .max();
    let mut answer = Json(response).into_response();
    if let Some(seconds) = retry_after {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    answer
}

fn responses(batch: &BatchResponse) -> impl Iterator<Item = &async_graphql::Response> {
    match batch {
        BatchResponse::Single(one) => std::slice::from_ref(one).iter(),
        BatchResponse::Batch(all) => all.iter(),
    }
}

/// The `retryAfter` (seconds) of an error, if it has one.
fn retry_after_of(error: &ServerError) -> Option<u64> {
    match error.extensions.as_ref()?.get("retryAfter")? {
        async_graphql::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `GET /graphql` and `/graphql/ws`: subscriptions for a WebSocket, GraphiQL for a browser.
/// The token goes in the connection's init payload (`{"Authorization": "Bearer <token>"}`,
/// or `{"token": …}`) or in the upgrade request's `Authorization` header.
async fn graphiql_or_socket(State(state): State<GatewayState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        if parts.uri.path() == "/graphql" {
            return graphiql::page().await.into_response();
        }
        return client_error(
            StatusCode::BAD_REQUEST,
            "this address takes WebSocket connections (graphql-transport-ws)",
        );
    };
    let edge = state.edge.clone();
    let client = edge.client(&parts);
    if let Err(wait) = edge.spend(&[Spender::client(client)], 1) {
        return rate_limited(wait);
    }
    let Some(slot) = edge.sockets.open(client) else {
        let mut response = ErrorShape::GraphQl.response(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many open WebSockets from this client (HERALD_WS_CONNECTIONS_PER_CLIENT); \
             close one first",
        );
        // A place frees when a socket closes, which cannot be foretold: retry soon.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
        return response;
    };
    let header_token = bearer(&parts).map(str::to_owned);
    let upgrade = upgrade
        .protocols(Protocol::NAMES)
        .max_message_size(edge.max_message)
        .max_frame_size(edge.max_message);
    let protocol = Protocol::agreed(upgrade.selected_protocol().and_then(|p| p.to_str().ok()));
    upgrade.on_upgrade(move |socket| {
        Connection {
            operations: state.operations.clone(),
            edge,
            protocol,
            client,
            header_token,
            slot,
        }
        .serve(socket)
    })
}

fn bearer(parts: &Parts) -> Option<&str> {
    herald_platform::auth::bearer(parts)
}

/// One-click unsubscribe links from emails (RFC 8058), for a notifications service in
/// another process: it checks the signed token and answers; the gateway is only the public
/// address.
async fn pass_unsubscribe(
    State(notifications): State<ServiceClient>,
    method: Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let path = format!("/unsubscribe?{}", uri.query().unwrap_or_default());
    let method =
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    match notifications
        .pass_through(method, &path, body.to_vec())
        .await
    {
        Ok(response) => response,
        Err(e) => herald_platform::ApiError::Unexpected(e).into_response(),
    }
}

/// `application/json`, with parameters or not, or a `+json` type: the GraphQL over HTTP
/// spec's request type. Anything else (`text/plain` forms, no type at all) is refused, so
/// a page on another origin cannot post to the API without a CORS preflight.
fn is_json(parts: &Parts) -> bool {
    let Some(value) = parts.headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A request that is not GraphQL at all still gets a GraphQL-shaped error.
fn client_error(status: StatusCode, message: &str) -> Response {
    ErrorShape::GraphQl.response(status, ErrorCode::BadUserInput, message)
}

/// The error of a request over its budget, with when to try again.
pub fn rate_limited_error(wait: Duration) -> ServerError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut error = ServerError::new(format!("too many requests; try again in {seconds} s"), None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", ErrorCode::RateLimited.as_str());
    extensions.set("retryAfter", seconds);
    error
}

/// 429 with `Retry-After`.
fn rate_limited(wait: Duration) -> Response {
    let error = rate_limited_error(wait);
    let seconds = retry_after_of(&error).unwrap_or(1);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(serde_json::json!({ "errors": [error] })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
