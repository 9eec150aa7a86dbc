//! Batched lookups: all the products a response needs come from one call.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context};
use herald_platform::ErrorCode;
use herald_platform::http::ServiceClient;
use serde_json::json;
use uuid::Uuid;

use crate::error::{GqlResult, gql_error, to_graphql};
use crate::types::{OrderItem, Product, Recommendation};

pub struct ProductLoader {
    products: ServiceClient,
}

impl ProductLoader {
    pub fn new(products: ServiceClient) -> DataLoader<ProductLoader> {
        DataLoader::new(ProductLoader { products }, tokio::spawn)
    }
}

impl Loader<Uuid> for ProductLoader {
    type Value = Product;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Product>, Self::Error> {
        let found: Vec<Product> = self
            .products
            .post("/products/lookup", &json!({ "ids": ids }), None)
            .await
            .map_err(to_graphql)?;
        Ok(found
            .into_iter()
            .filter_map(|p| p.id.parse::<Uuid>().ok().map(|id| (id, p)))
            .collect())
    }
}

#[ComplexObject]
impl OrderItem {
    async fn product(&self, ctx: &Context<'_>) -> GqlResult<Product> {
        let loader = ctx.data_unchecked::<DataLoader<ProductLoader>>();
        loader.load_one(self.product_id).await?.ok_or_else(|| {
            gql_error(
                ErrorCode::NotFound,
                format!("no product {}", self.product_id),
            )
        })
    }
}

#[ComplexObject]
impl Recommendation {
    async fn product(&self, ctx: &Context<'_>) -> GqlResult<Product> {
        let loader = ctx.data_unchecked::<DataLoader<ProductLoader>>();
        loader.load_one(self.product_id).await?.ok_or_else(|| {
            gql_error(
                ErrorCode::NotFound,
                format!("no product {}", self.product_id),
            )
        })
    }
}
