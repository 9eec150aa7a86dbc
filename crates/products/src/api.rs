//! The products service's HTTP API, for Herald's services (each call carries a service
//! credential), through the same [`InProcessCatalog`] other services in this process call.
//! Reading the catalog acts for nobody in particular; changing it acts for an admin;
//! watching acts for the caller; reserving and releasing stock are the orders service's
//! alone.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use herald_platform::auth::{Caller, Claims, ServiceCall, TokenVerifier};
use herald_platform::http::created;
use herald_platform::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::client::{
    CatalogApi, InProcessCatalog, ListQuery, LookupRequest, ProductPage, Released, StockApi,
    StockInput, Watching, require_admin,
};
use crate::domain::{
    ProductInput, ProductPatch, ReservationInput, ReservationRequest, no_product, product_id,
};
use crate::store::Product;
use crate::store::reservations::Reservation;

/// The service that reserves and releases stock.
const ORDERS: &str = "orders";

#[derive(Clone)]
pub struct ProductsState {
    pub catalog: InProcessCatalog,
    pub verifier: TokenVerifier,
}

impl FromRef<ProductsState> for TokenVerifier {
    fn from_ref(state: &ProductsState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: ProductsState) -> Router {
    Router::new()
        .route("/products", get(list_products).post(create_product))
        .route("/products/lookup", post(lookup_products))
        .route("/products/{id}", get(product).patch(update_product))
        .route("/products/{id}/stock", put(set_stock))
        .route("/products/{id}/watch", post(watch_product))
        .route("/reservations", post(reserve_stock))
        .route("/reservations/{order_id}/release", post(release_stock))
        .with_state(state)
}

/// A JSON body whose rejection (not JSON, wrong shape) is BAD_USER_INPUT in the usual
/// error body. Taken as a `Result` so that a non-admin hears FORBIDDEN before that.
type Body<T> = Result<Json<T>, JsonRejection>;

fn body<T: DeserializeOwned>(body: Body<T>) -> ApiResult<T> {
    body.map(|Json(value)| value)
        .map_err(|e| ApiError::bad_input(e.body_text()))
}

/// What an admin's change sends, or why not: a non-admin hears FORBIDDEN before any
/// fault of the request itself.
fn for_admin<T>(claims: &Claims, parsed: ApiResult<T>) -> ApiResult<T> {
    parsed.map_err(|fault| require_admin(claims).err().unwrap_or(fault))
}

/// A product id from the path; one that is not a UUID names no product.
fn path_product(raw: &str) -> ApiResult<Uuid> {
    product_id(raw).ok_or_else(|| no_product(raw))
}

async fn list_products(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<ProductPage>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.catalog.list(&query).await?))
}

async fn product(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    let id = path_product(&id)?;
    Ok(Json(state.catalog.product(id).await?))
}

/// The products among the given ids that exist, for batched lookups; ids that are not
/// UUIDs are ignored like unknown ones.
async fn lookup_products(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    request: Body<LookupRequest>,
) -> ApiResult<Json<Vec<Product>>> {
    let request = body(request)?;
    let ids: Vec<Uuid> = request.ids.iter().filter_map(|id| product_id(id)).collect();
    Ok(Json(state.catalog.lookup(&ids).await?))
}

async fn create_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    input: Body<ProductInput>,
) -> ApiResult<Response> {
    let input = for_admin(&claims, body(input))?;
    let product = state.catalog.create_product(&claims, &input).await?;
    Ok(created(product))
}

async fn update_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    patch: Body<ProductPatch>,
) -> ApiResult<Json<Product>> {
    let patch = for_admin(&claims, body(patch))?;
    let id = for_admin(&claims, path_product(&id))?;
    Ok(Json(
        state.catalog.update_product(&claims, id, &patch).await?,
    ))
}

async fn set_stock(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    input: Body<StockInput>,
) -> ApiResult<Json<Product>> {
    let input = for_admin(&claims, body(input))?;
    let id = for_admin(&claims, path_product(&id))?;
    Ok(Json(
        state.catalog.set_stock(&claims, id, input.stock).await?,
    ))
}

async fn watch_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Watching>> {
    let id = path_product(&id)?;
    state.catalog.watch_product(&claims, id).await?;
    Ok(Json(Watching { watching: true }))
}

async fn reserve_stock(
    State(state): State<ProductsState>,
    call: ServiceCall,
    input: Body<ReservationInput>,
) -> ApiResult<Json<Reservation>> {
    call.only_from(&[ORDERS])?;
    let claims = call.acting_user()?;
    let request = ReservationRequest::parse(&body(input)?)?;
    Ok(Json(state.catalog.reserve_stock(claims, &request).await?))
}

async fn release_stock(
    State(state): State<ProductsState>,
    call: ServiceCall,
    Path(order_id): Path<String>,
) -> ApiResult<Json<Released>> {
    call.only_from(&[ORDERS])?;
    let claims = call.acting_user()?;
    let order_id: Uuid = order_id
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_input(format!("'{order_id}' is not an order id")))?;
    let released = state.catalog.release_stock(claims, order_id).await?;
    Ok(Json(Released { released }))
}
