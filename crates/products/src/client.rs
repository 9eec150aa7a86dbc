//! The products service as other services use it: the catalog, its stock, watches and the
//! reservations orders hold. [`CatalogApi`] is the one way to call it, with two
//! implementations: [`InProcessCatalog`], in the same process (no HTTP, no JSON, no second
//! token check), and [`CatalogOverHttp`], across processes with a service credential. The
//! HTTP routes of `api` serve the second with the first, so both run the same code.

use herald_platform::auth::Claims;
use herald_platform::http::ServiceClient;
use herald_platform::paging::{PageInfo, take_page};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::{Catalog, begin_snapshot};
use crate::domain::{
    MAX_BATCH, NewProduct, PageRequest, ProductInput, ProductPatch, ReservationRequest, no_product,
};
use crate::store::Product;
use crate::store::products;
use crate::store::reservations::Reservation;

/// Which page of the catalog to list, filtered by category, searched by text.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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

/// The body of `POST /products/lookup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupRequest {
    pub ids: Vec<String>,
}

/// The body of `PUT /products/{id}/stock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The products service's operations for the gateway. Reading the catalog acts for nobody
/// in particular; changing it acts for an admin (FORBIDDEN otherwise); watching acts for
/// the user. Stock for orders is [`StockApi`]'s.
#[async_trait::async_trait]
pub trait CatalogApi: Send + Sync + 'static {
    /// The catalog in the order products were added, a page at a time; BAD_USER_INPUT
    /// for a bad page, category or search.
    async fn list(&self, query: &ListQuery) -> ApiResult<ProductPage>;
    /// NOT_FOUND if there is no such product.
    async fn product(&self, id: Uuid) -> ApiResult<Product>;
    /// The products among `ids` that exist, in no particular order; BAD_USER_INPUT for
    /// more than [`MAX_BATCH`] ids.
    async fn lookup(&self, ids: &[Uuid]) -> ApiResult<Vec<Product>>;
    async fn create_product(&self, acting: &Claims, input: &ProductInput) -> ApiResult<Product>;
    /// NOT_FOUND if there is no such product.
    async fn update_product(
        &self,
        acting: &Claims,
        id: Uuid,
        patch: &ProductPatch,
    ) -> ApiResult<Product>;
    /// Sets the stock level by hand; NOT_FOUND if there is no such product.
    async fn set_stock(&self, acting: &Claims, id: Uuid, stock: i64) -> ApiResult<Product>;
    /// Lets the acting user hear of the product's return to stock and price drops
    /// (idempotent); NOT_FOUND if there is no such product.
    async fn watch_product(&self, acting: &Claims, id: Uuid) -> ApiResult<()>;
}

/// The products service's stock, as the orders service alone uses it: over HTTP the
/// routes refuse any other caller; in process only orders is handed a `StockApi`.
#[async_trait::async_trait]
pub trait StockApi: Send + Sync + 'static {
    /// Reserves every line for the order of the acting buyer, or none (INSUFFICIENT_STOCK
    /// or NOT_FOUND naming the product). Idempotent by order id; CONFLICT for an order of
    /// another buyer's or one already released.
    async fn reserve_stock(
        &self,
        acting: &Claims,
        request: &ReservationRequest,
    ) -> ApiResult<Reservation>;
    /// Gives the order's units back; true only for the call that did. FORBIDDEN unless
    /// the acting user is the buyer or an admin.
    async fn release_stock(&self, acting: &Claims, order_id: Uuid) -> ApiResult<bool>;
}

/// The products service over its catalog, in this process.
#[derive(Clone, Debug)]
pub struct InProcessCatalog {
    catalog: Catalog,
}

impl InProcessCatalog {
    pub fn new(catalog: Catalog) -> InProcessCatalog {
        InProcessCatalog { catalog }
    }
}

/// FORBIDDEN unless the acting user is an admin.
pub(crate) fn require_admin(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins can change the catalog"))
    }
}

#[async_trait::async_trait]
impl CatalogApi for InProcessCatalog {
    async fn list(&self, query: &ListQuery) -> ApiResult<ProductPage> {
        let page = PageRequest::parse(
            query.first,
            query.after.as_deref(),
            query.category.as_deref(),
            query.search.as_deref(),
        )?;
        let mut tx = begin_snapshot(self.catalog.db()).await?;
        let rows = products::list_products(&mut tx, &page).await?;
        let total_count = products::count_products(&mut *tx, &page.filter).await?;
        tx.commit().await?;
        let (nodes, page_info) = take_page(rows, page.first, |p| p.id);
        Ok(ProductPage {
            nodes,
            page_info,
            total_count,
        })
    }

    async fn product(&self, id: Uuid) -> ApiResult<Product> {
        products::find_product(self.catalog.db().pool(), id)
            .await?
            .ok_or_else(|| no_product(id))
    }

    async fn lookup(&self, ids: &[Uuid]) -> ApiResult<Vec<Product>> {
        if ids.len() > MAX_BATCH {
            return Err(ApiError::bad_input(format!(
                "at most {MAX_BATCH} ids per lookup"
            )));
        }
        metrics::counter!("product_lookups_total").increment(1);
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(products::products_by_ids(self.catalog.db(), &ids).await?)
    }

    async fn create_product(&self, acting: &Claims, input: &ProductInput) -> ApiResult<Product> {
        require_admin(acting)?;
        let new = NewProduct::parse(input)?;
        self.catalog.create_product(&new).await
    }

    async fn update_product(
        &self,
        acting: &Claims,
        id: Uuid,
        patch: &ProductPatch,
    ) -> ApiResult<Product> {
        require_admin(acting)?;
        self.catalog.update_product(id, patch).await
    }

    async fn set_stock(&self, acting: &Claims, id: Uuid, stock: i64) -> ApiResult<Product> {
        require_admin(acting)?;
        self.catalog.set_stock(id, stock).await
    }

    async fn watch_product(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        self.catalog.watch_product(id, acting.sub).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl StockApi for InProcessCatalog {
    async fn reserve_stock(
        &self,
        acting: &Claims,
        request: &ReservationRequest,
    ) -> ApiResult<Reservation> {
        request.check()?;
        self.catalog.reserve_stock(request, acting).await
    }

    async fn release_stock(&self, acting: &Claims, order_id: Uuid) -> ApiResult<bool> {
        self.catalog.release_stock(order_id, acting).await
    }
}

/// The products service in another process.
#[derive(Clone, Debug)]
pub struct CatalogOverHttp {
    service: ServiceClient,
}

impl CatalogOverHttp {
    /// `service` calls the products service.
    pub fn new(service: ServiceClient) -> CatalogOverHttp {
        CatalogOverHttp { service }
    }
}

#[async_trait::async_trait]
impl CatalogApi for CatalogOverHttp {
    async fn list(&self, query: &ListQuery) -> ApiResult<ProductPage> {
        let mut url = url::Url::parse("http://products.invalid/products")
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(first) = query.first {
                pairs.append_pair("first", &first.to_string());
            }
            for (name, value) in [
                ("after", &query.after),
                ("category", &query.category),
                ("search", &query.search),
            ] {
                if let Some(value) = value {
                    pairs.append_pair(name, value);
                }
            }
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        self.service.get(&path, None).await
    }

    async fn product(&self, id: Uuid) -> ApiResult<Product> {
        self.service.get(&format!("/products/{id}"), None).await
    }

    async fn lookup(&self, ids: &[Uuid]) -> ApiResult<Vec<Product>> {
        let request = LookupRequest {
            ids: ids.iter().map(Uuid::to_string).collect(),
        };
        self.service.post("/products/lookup", &request, None).await
    }

    async fn create_product(&self, acting: &Claims, input: &ProductInput) -> ApiResult<Product> {
        self.service.post("/products", input, Some(acting)).await
    }

    async fn update_product(
        &self,
        acting: &Claims,
        id: Uuid,
        patch: &ProductPatch,
    ) -> ApiResult<Product> {
        self.service
            .patch(&format!("/products/{id}"), patch, Some(acting))
            .await
    }

    async fn set_stock(&self, acting: &Claims, id: Uuid, stock: i64) -> ApiResult<Product> {
        self.service
            .put(
                &format!("/products/{id}/stock"),
                &StockInput { stock },
                Some(acting),
            )
            .await
    }

    async fn watch_product(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        let _: Watching = self
            .service
            .post(&format!("/products/{id}/watch"), &(), Some(acting))
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl StockApi for CatalogOverHttp {
    async fn reserve_stock(
        &self,
        acting: &Claims,
        request: &ReservationRequest,
    ) -> ApiResult<Reservation> {
        self.service
            .post("/reservations", &request.input(), Some(acting))
            .await
    }

    async fn release_stock(&self, acting: &Claims, order_id: Uuid) -> ApiResult<bool> {
        let released: Released = self
            .service
            .post(
                &format!("/reservations/{order_id}/release"),
                &(),
                Some(acting),
            )
            .await?;
        Ok(released.released)
    }
}
