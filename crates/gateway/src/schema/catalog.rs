//! The catalog, stock and watches (the products service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;
use herald_products::client::ListQuery;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::limits::list_cost;
use crate::types::*;

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// The catalog in the order products were added; filter by category, search by text.
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
        after: Option<String>,
        category: Option<String>,
        search: Option<String>,
    ) -> GqlResult<ProductConnection> {
        let query = ListQuery {
            first: Some(first.unwrap_or(20).into()),
            after,
            category,
            search,
        };
        let page = ctx.services().catalog.list(&query).await.gql()?;
        Ok(page.into())
    }

    /// One product, or null if there is none with this id.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Product>> {
        let Ok(id) = parse_uuid(&id, ErrorCode::NotFound, "product") else {
            return Ok(None);
        };
        match ctx.services().catalog.product(id).await {
            Ok(product) => Ok(Some(product.into())),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(crate::error::to_graphql(e)),
        }
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Hear when the product is back in stock or cheaper.
    async fn watch_product(&self, ctx: &Context<'_>, product_id: ID) -> GqlResult<bool> {
        let caller = ctx.caller()?;
        let id = parse_uuid(&product_id, ErrorCode::NotFound, "product")?;
        ctx.services()
            .catalog
            .watch_product(caller.claims, id)
            .await
            .gql()?;
        Ok(true)
    }

    async fn create_product(&self, ctx: &Context<'_>, input: ProductInput) -> GqlResult<Product> {
        let caller = ctx.admin()?;
        let product = ctx
            .services()
            .catalog
            .create_product(caller.claims, &input.into())
            .await
            .gql()?;
        Ok(product.into())
    }

    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ProductUpdateInput,
    ) -> GqlResult<Product> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "product")?;
        let product = ctx
            .services()
            .catalog
            .update_product(caller.claims, id, &input.into())
            .await
            .gql()?;
        Ok(product.into())
    }

    async fn set_stock(&self, ctx: &Context<'_>, product_id: ID, stock: i32) -> GqlResult<Product> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&product_id, ErrorCode::NotFound, "product")?;
        if stock < 0 {
            return Err(gql_error(
                ErrorCode::BadUserInput,
                "stock must not be negative",
            ));
        }
        let product = ctx
            .services()
            .catalog
            .set_stock(caller.claims, id, stock.into())
            .await
            .gql()?;
        Ok(product.into())
    }
}
