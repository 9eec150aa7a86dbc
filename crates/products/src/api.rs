//! The products service's HTTP API, for Herald's services (each call carries a service
//! credential). Reading the catalog acts for nobody in particular; changing it acts for an
//! admin; watching acts for the caller; reserving and releasing stock are the orders
//! service's alone.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use herald_platform::auth::{Caller, Claims, ServiceCall, TokenVerifier};
use herald_platform::http::created;
use herald_platform::paging::{PageInfo, take_page};
use herald_platform::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::{Catalog, begin_snapshot};
use crate::domain::{
    MAX_BATCH, NewProduct, PageRequest, ProductInput, ProductPatch, ReservationInput,
    ReservationRequest, no_product, product_id,
};
use crate::store::Product;
use crate::store::products;
use crate::store::reservations::Reservation;

/// The service that reserves and releases stock.
const ORDERS: &str = "orders";

#[derive(Clone)]
pub struct ProductsState {
    pub catalog: Catalog,
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

fn require_admin(claims: &Claims) -> ApiResult<()> {
    if claims.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins can change the catalog"))
    }
}

/// A product id from the path; one that is not a UUID names no product.
fn path_product(raw: &str) -> ApiResult<Uuid> {
    product_id(raw).ok_or_else(|| no_product(raw))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub first: Option<i64>,
    pub after: Option<String>,
    pub category: Option<String>,
    pub search: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    pub nodes: Vec<Product>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LookupRequest {
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StockInput {
    pub stock: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watching {
    pub watching: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub released: bool,
}

async fn list_products(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<ProductPage>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let page = PageRequest::parse(
        query.first,
        query.after.as_deref(),
        query.category.as_deref(),
        query.search.as_deref(),
    )?;
    let mut tx = begin_snapshot(state.catalog.db()).await?;
    let rows = products::list_products(&mut tx, &page).await?;
    let total_count = products::count_products(&mut *tx, &page.filter).await?;
    tx.commit().await?;
    let (nodes, page_info) = take_page(rows, page.first, |p| p.id);
    Ok(Json(ProductPage {
        nodes,
        page_info,
        total_count,
    }))
}

async fn product(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    let id = path_product(&id)?;
    products::find_product(state.catalog.db().pool(), id)
        .await?
        .map(Json)
        .ok_or_else(|| no_product(id))
}

/// The products among the given ids that exist, for batched lookups; ids that are not
/// UUIDs are ignored like unknown ones.
async fn lookup_products(
    State(state): State<ProductsState>,
    _call: ServiceCall,
    request: Body<LookupRequest>,
) -> ApiResult<Json<Vec<Product>>> {
    let request = body(request)?;
    if request.ids.len() > MAX_BATCH {
        return Err(ApiError::bad_input(format!(
            "at most {MAX_BATCH} ids per lookup"
        )));
    }
    let mut ids: Vec<Uuid> = request.ids.iter().filter_map(|id| product_id(id)).collect();
    ids.sort_unstable();
    ids.dedup();
    let found = products::products_by_ids(state.catalog.db(), &ids).await?;
    Ok(Json(found))
}

async fn create_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    input: Body<ProductInput>,
) -> ApiResult<Response> {
    require_admin(&claims)?;
    let new = NewProduct::parse(&body(input)?)?;
    let product = state.catalog.create_product(&new).await?;
    Ok(created(product))
}

async fn update_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    patch: Body<ProductPatch>,
) -> ApiResult<Json<Product>> {
    require_admin(&claims)?;
    let patch = body(patch)?;
    let id = path_product(&id)?;
    Ok(Json(state.catalog.update_product(id, &patch).await?))
}

async fn set_stock(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    input: Body<StockInput>,
) -> ApiResult<Json<Product>> {
    require_admin(&claims)?;
    let input = body(input)?;
    let id = path_product(&id)?;
    Ok(Json(state.catalog.set_stock(id, input.stock).await?))
}

async fn watch_product(
    State(state): State<ProductsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Watching>> {
    let id = path_product(&id)?;
    state.catalog.watch_product(id, claims.sub).await?;
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
    Ok(Json(state.catalog.reserve_stock(&request, claims).await?))
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
    let released = state.catalog.release_stock(order_id, claims).await?;
    Ok(Json(Released { released }))
}
