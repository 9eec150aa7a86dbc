//! Batched lookups: all the products a response needs come from one call.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context};
use herald_platform::ErrorCode;
use herald_products::client::CatalogApi;
use uuid::Uuid;

use crate::error::{GqlResult, gql_error, to_graphql};
use crate::types::{OrderItem, Product, Recommendation};

pub struct ProductLoader {
    catalog: Arc<dyn CatalogApi>,
}

impl ProductLoader {
    pub fn new(catalog: Arc<dyn CatalogApi>) -> DataLoader<ProductLoader> {
        DataLoader::new(ProductLoader { catalog }, tokio::spawn)
    }
}

impl Loader<Uuid> for ProductLoader {
    type Value = Product;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Product>, Self::Error> {
        let found = self.catalog.lookup(ids).await.map_err(to_graphql)?;
        Ok(found
            .into_iter()
            .map(|p| (p.id, Product::from(p)))
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
