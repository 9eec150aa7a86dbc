//! The gateway: the one public entry. It serves the GraphQL contract over HTTP, checks
//! tokens, enforces limits, serves GraphiQL offline, and calls the services.

mod context;
mod error;
mod graphiql;
mod live;
mod loaders;
mod metrics;
mod schema;
pub mod types;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, BatchResponse, Data, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::cache::Cache;
use herald_platform::http::{BuiltService, Readiness, ServiceClient, service_router};

pub use context::{RequestAuth, Services};
use live::LiveHub;
use schema::{HeraldSchema, Mutation, Query, Subscription};

pub const SERVICE: &str = "gateway";

#[derive(Clone)]
struct GatewayState {
    schema: HeraldSchema,
    verifier: TokenVerifier,
    notifications: ServiceClient,
}

/// The schema with its limits; also used to print the SDL.
pub fn schema(services: Option<(Services, LiveHub)>, settings: &Settings) -> HeraldSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(settings.max_query_depth)
    .limit_complexity(settings.max_query_complexity)
    .limit_recursive_depth(32)
    .extension(metrics::OperationMetrics)
    .extension(error::ErrorCodes);
    if let Some((services, live)) = services {
        builder = builder
            .data(loaders::ProductLoader::new(services.products.clone()))
            .data(services)
            .data(live);
    }
    builder.finish()
}

/// The schema's SDL, for docs and contract checks.
pub fn sdl() -> String {
    schema(None, &Settings::default()).sdl()
}

/// Builds the gateway. `readiness` is what the process needs (in all-in-one mode, every
/// service's dependencies), reported on the gateway's `/ready`; `cache` carries the live
/// changes pushed to subscriptions.
pub fn build(
    settings: &Settings,
    verifier: TokenVerifier,
    readiness: Readiness,
    cache: &Cache,
) -> BuiltService {
    let services = Services {
        users: ServiceClient::new("users", &settings.users_url()),
        notifications: ServiceClient::new("notifications", &settings.notifications_url()),
        products: ServiceClient::new("products", &settings.products_url()),
        orders: ServiceClient::new("orders", &settings.orders_url()),
        recommendations: ServiceClient::new("recommendations", &settings.recommendations_url()),
        scheduler: ServiceClient::new("scheduler", &settings.scheduler_url()),
    };
    let state = GatewayState {
        notifications: services.notifications.clone(),
        schema: schema(Some((services, LiveHub::new(cache.clone()))), settings),
        verifier,
    };
    let api = Router::new()
        .route("/graphql", get(graphiql_or_subscriptions).post(graphql))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .route("/unsubscribe", get(unsubscribe).post(unsubscribe))
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/graphql") }),
        )
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));
    BuiltService {
        name: SERVICE,
        router: service_router(SERVICE, api, readiness.clone()),
        readiness,
        tasks: Vec::new(),
    }
}

async fn graphql(State(state): State<GatewayState>, headers: HeaderMap, body: Bytes) -> Response {
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return client_error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    let auth = RequestAuth::from_bearer(bearer(&headers), &state.verifier);
    let response = match request {
        BatchRequest::Single(request) => {
            BatchResponse::Single(state.schema.execute(request.data(auth)).await)
        }
        BatchRequest::Batch(requests) => {
            if requests.len() > 20 {
                return client_error(StatusCode::BAD_REQUEST, "at most 20 operations per batch");
            }
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(state.schema.execute(request.data(auth.clone())).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    Json(response).into_response()
}

/// `GET /graphql`: GraphiQL for a browser, subscriptions for a WebSocket (the
/// `graphql-transport-ws` and the older `graphql-ws` protocols). The token goes in the
/// connection's init payload (`{"Authorization": "Bearer <token>"}`, or `{"token": …}`) or
/// in the upgrade request's `Authorization` header.
async fn graphiql_or_subscriptions(
    State(state): State<GatewayState>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return graphiql::page().await.into_response();
    };
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let header_token = bearer(&parts.headers).map(str::to_owned);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let verifier = state.verifier.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = init_token(&payload).or(header_token);
                    let mut data = Data::default();
                    data.insert(RequestAuth::from_bearer(token.as_deref(), &verifier));
                    Ok(data)
                })
                .serve()
        })
}

/// The token of a subscription's init payload: `Authorization` (either case, `Bearer `
/// optional) or `token`.
fn init_token(payload: &serde_json::Value) -> Option<String> {
    ["Authorization", "authorization", "token"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
        .map(|value| {
            value
                .strip_prefix("Bearer ")
                .unwrap_or(value)
                .trim()
                .to_owned()
        })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// One-click unsubscribe links from emails (RFC 8058): the notifications service checks
/// the signed token and answers; the gateway is only the public address.
async fn unsubscribe(
    State(state): State<GatewayState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let path = format!("/unsubscribe?{}", uri.query().unwrap_or_default());
    let method =
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    match state
        .notifications
        .pass_through(method, &path, body.to_vec())
        .await
    {
        Ok(response) => response,
        Err(e) => herald_platform::ApiError::Unexpected(e).into_response(),
    }
}

/// A request that is not GraphQL at all still gets a GraphQL-shaped error.
fn client_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
    });
    (status, Json(body)).into_response()
}
