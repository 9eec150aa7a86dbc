//! The catalog, stock and watches (the products service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;
use serde::Deserialize;
use serde_json::json;

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
        let mut query = vec![("first", first.unwrap_or(20).to_string())];
        query.extend(after.map(|v| ("after", v)));
        query.extend(category.map(|v| ("category", v)));
        query.extend(search.map(|v| ("search", v)));
        let path = format!("/products?{}", encode_query(&query));
        ctx.services().products.get(&path, None).await.gql()
    }

    /// One product, or null if there is none with this id.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Product>> {
        let Ok(id) = parse_uuid(&id, ErrorCode::NotFound, "product") else {
            return Ok(None);
        };
        let found = ctx
            .services()
            .products
            .get(&format!("/products/{id}"), None)
            .await;
        match found {
            Ok(product) => Ok(Some(product)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(crate::error::to_graphql(e)),
        }
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[derive(Deserialize)]
struct Watching {
    watching: bool,
}

#[Object]
impl CatalogMutation {
    /// Hear when the product is back in stock or cheaper.
    async fn watch_product(&self, ctx: &Context<'_>, product_id: ID) -> GqlResult<bool> {
        let caller = ctx.caller()?;
        let id = parse_uuid(&product_id, ErrorCode::NotFound, "product")?;
        let answer: Watching = ctx
            .services()
            .products
            .post(
                &format!("/products/{id}/watch"),
                &json!({}),
                Some(caller.claims),
            )
            .await
            .gql()?;
        Ok(answer.watching)
    }

    async fn create_product(&self, ctx: &Context<'_>, input: ProductInput) -> GqlResult<Product> {
        let caller = ctx.admin()?;
        ctx.services()
            .products
            .post("/products", &input, Some(caller.claims))
            .await
            .gql()
    }

    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ProductUpdateInput,
    ) -> GqlResult<Product> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "product")?;
        ctx.services()
            .products
            .patch(&format!("/products/{id}"), &input, Some(caller.claims))
            .await
            .gql()
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
        ctx.services()
            .products
            .put(
                &format!("/products/{id}/stock"),
                &json!({ "stock": stock }),
                Some(caller.claims),
            )
            .await
            .gql()
    }
}

fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut url = url::Url::parse("http://query.invalid/").expect("static URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        let q = super::encode_query(&[("search", "a&b=c d".to_owned()), ("first", "5".to_owned())]);
        assert_eq!(q, "search=a%26b%3Dc+d&first=5");
    }
}
