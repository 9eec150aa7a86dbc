//! The gateway: the one public entry. It serves the GraphQL contract over HTTP, checks
//! tokens, enforces limits, serves GraphiQL offline, and calls the services.

mod context;
mod edge;
mod error;
mod graphiql;
mod identity;
mod kept;
mod limits;
mod live;
mod loaders;
mod metrics;
mod operations;
mod ordering;
mod schema;
pub mod types;
mod web;

use std::sync::Arc;

use async_graphql::Schema;
use herald_notifications::inbox::{InboxApi, InboxOverHttp};
use herald_notifications::promotions::{PromotionsApi, PromotionsOverHttp};
use herald_orders::client::{OrdersApi, OrdersOverHttp};
use herald_platform::Settings;
use herald_platform::auth::{ServiceCredentials, TokenVerifier};
use herald_platform::cache::Cache;
use herald_platform::deadletters::DeadLettersApi;
use herald_platform::http::{
    BuiltService, ConnectionLimits, ErrorShape, Readiness, ServiceClient, shaped_router,
};
use herald_platform::telemetry::MetricDoc;
use herald_products::client::{CatalogApi, CatalogOverHttp};
use herald_recommendations::recommendations::{RecommendationsApi, RecommendationsOverHttp};
use herald_scheduler::client::{SchedulerApi, SchedulerOverHttp};
use herald_users::accounts::{AccountsApi, AccountsOverHttp};

pub use context::{RequestAuth, Services};
use edge::{Edge, GatewayState, UnsubscribePages};
use identity::Identity;
use live::LiveHub;
use operations::Operations;
use schema::{HeraldSchema, Mutation, Query, Subscription};

pub const SERVICE: &str = "gateway";

/// The gateway, as `herald` runs it: no storage of its own.
pub const DESCRIPTOR: herald_platform::service::ServiceDescriptor =
    herald_platform::service::ServiceDescriptor {
        name: SERVICE,
        migrations: None,
        metrics: METRICS,
    };

/// The gateway's metrics.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        "graphql_operations_total",
        "Root fields of the operations run, by operation type, field and outcome (ok or the error code).",
    ),
    MetricDoc::histogram(
        "graphql_operation_duration_seconds",
        "Time to run an operation, by the type and field of each of its root fields.",
    ),
    MetricDoc::counter(
        "gateway_rate_limited_total",
        "Requests refused because a client's or user's budget was spent, by budget.",
    ),
    MetricDoc::gauge("gateway_websockets_open", "WebSocket connections open."),
    MetricDoc::counter(
        "gateway_kept_answers_total",
        "Answers kept for polls that repeat them, by outcome: kept, served again, or changed since.",
    ),
    MetricDoc::counter(
        "gateway_token_version_unknown_total",
        "Tokens checked without their account's current version (the users service did not answer).",
    ),
    MetricDoc::gauge(
        "gateway_live_subscriptions",
        "Live subscriptions listening for their user's changes.",
    ),
    MetricDoc::counter(
        "gateway_live_dropped_total",
        "Live changes dropped for a subscription too far behind.",
    ),
];

/// The schema with its limits; also used to print the SDL.
pub fn schema(services: Option<(Services, LiveHub)>, settings: &Settings) -> HeraldSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_recursive_depth(limits::MAX_HEIGHT)
    .limit_directives(limits::MAX_DIRECTIVES)
    // What a query could return, list sizes multiplied ([`limits::QueryLimits`] explains
    // the refusal).
    .limit_complexity(settings.max_query_complexity);
    if let Some((services, live)) = services {
        builder = builder
            .data(loaders::ProductLoader::new(services.catalog.clone()))
            .data(services)
            .data(live);
    }
    builder.finish()
}

/// The schema's SDL, for docs and contract checks.
pub fn sdl() -> String {
    schema(None, &Settings::default()).sdl()
}

/// The services running in the gateway's own process, called directly rather than over
/// HTTP; any left out are called at their `HERALD_*_URL`.
#[derive(Default, Clone)]
pub struct InProcess {
    pub inbox: Option<Arc<dyn InboxApi>>,
    pub accounts: Option<Arc<dyn AccountsApi>>,
    pub recommendations: Option<Arc<dyn RecommendationsApi>>,
    pub catalog: Option<Arc<dyn CatalogApi>>,
    /// Every consuming service's dead letters (directly for those that run here; over HTTP
    /// for the others: the caller knows which services consume).
    pub dead_letters: Vec<Arc<dyn DeadLettersApi>>,
    /// The notifications service's unsubscribe pages, served on the gateway's port as they
    /// are (passed through to the service's port otherwise).
    pub unsubscribe_pages: Option<axum::Router>,
    pub orders: Option<Arc<dyn OrdersApi>>,
    pub promotions: Option<Arc<dyn PromotionsApi>>,
    pub scheduler: Option<Arc<dyn SchedulerApi>>,
}

/// Builds the gateway. `readiness` is what the process needs (in all-in-one mode, every
/// service's dependencies), reported on the gateway's `/ready`; `cache` carries the live
/// changes pushed to subscriptions.
pub fn build(
    settings: &Settings,
    verifier: TokenVerifier,
    credentials: ServiceCredentials,
    in_process: InProcess,
    readiness: Readiness,
    cache: &Cache,
) -> BuiltService {
    // A service that does not run here is called at its URL.
    let apart = |service: &'static str| {
        ServiceClient::new(&credentials, service, &settings.service_url(service))
    };
    let services = Services {
        inbox: in_process.inbox.unwrap_or_else(|| {
            Arc::new(InboxOverHttp::new(apart("notifications"))) as Arc<dyn InboxApi>
        }),
        catalog: in_process.catalog.unwrap_or_else(|| {
            Arc::new(CatalogOverHttp::new(apart("products"))) as Arc<dyn CatalogApi>
        }),
        accounts: in_process.accounts.unwrap_or_else(|| {
            Arc::new(AccountsOverHttp::new(apart("users"))) as Arc<dyn AccountsApi>
        }),
        recommendations: in_process.recommendations.unwrap_or_else(|| {
            Arc::new(RecommendationsOverHttp::new(apart("recommendations")))
                as Arc<dyn RecommendationsApi>
        }),
        promotions: in_process.promotions.unwrap_or_else(|| {
            Arc::new(PromotionsOverHttp::new(apart("notifications"))) as Arc<dyn PromotionsApi>
        }),
        orders: in_process.orders.unwrap_or_else(|| {
            Arc::new(OrdersOverHttp::new(apart("orders"))) as Arc<dyn OrdersApi>
        }),
        scheduler: in_process.scheduler.unwrap_or_else(|| {
            Arc::new(SchedulerOverHttp::new(apart("scheduler"))) as Arc<dyn SchedulerApi>
        }),
        dead_letters: in_process.dead_letters,
    };
    let unsubscribe = match in_process.unsubscribe_pages {
        Some(pages) => UnsubscribePages::Here(pages),
        None => UnsubscribePages::Apart(apart("notifications")),
    };
    let identity = Identity::new(verifier, services.accounts.clone());
    let kept = kept::KeptAnswers::new(services.inbox.clone());
    let accounts = services.accounts.clone();
    let state = GatewayState {
        operations: Operations::new(
            schema(Some((services, LiveHub::new(cache.clone()))), settings),
            limits::QueryLimits::new(settings),
            kept,
        ),
        edge: Arc::new(Edge::new(settings, identity)),
    };
    let mut router = shaped_router(
        SERVICE,
        edge::routes(state, unsubscribe, accounts),
        readiness.clone(),
        ErrorShape::GraphQl,
    );
    if let Some(cors) = edge::cors(settings) {
        router = router.layer(cors);
    }
    BuiltService {
        name: SERVICE,
        router,
        error_shape: ErrorShape::GraphQl,
        connections: ConnectionLimits {
            // Behind a proxy every connection is the proxy's; it caps its clients.
            per_peer: (settings.trusted_proxy_header.is_none()
                && settings.connections_per_client > 0)
                .then_some(settings.connections_per_client as usize),
            ..ConnectionLimits::default()
        },
        readiness,
        dead_letters: None,
        tasks: Vec::new(),
    }
}
