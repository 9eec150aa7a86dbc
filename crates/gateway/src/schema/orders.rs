//! Orders and their lifecycle (the orders service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;
use serde_json::json;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql};
use crate::limits::list_cost;
use crate::types::*;

#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// The caller's orders, newest first.
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
    ) -> GqlResult<Vec<Order>> {
        let caller = ctx.caller()?;
        let first = first.unwrap_or(20);
        ctx.services()
            .orders
            .get(&format!("/orders?first={first}"), Some(caller.claims))
            .await
            .gql()
    }

    /// One of the caller's orders (admins: any order), or null.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Order>> {
        let caller = ctx.caller()?;
        let Ok(id) = parse_uuid(&id, ErrorCode::NotFound, "order") else {
            return Ok(None);
        };
        match ctx
            .services()
            .orders
            .get(&format!("/orders/{id}"), Some(caller.claims))
            .await
        {
            Ok(order) => Ok(Some(order)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(crate::error::to_graphql(e)),
        }
    }
}

#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Places and confirms an order at catalog prices, or fails with INSUFFICIENT_STOCK
    /// naming the product and reserving nothing.
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> GqlResult<Order> {
        let caller = ctx.caller()?;
        let mut items = Vec::with_capacity(input.items.len());
        for item in &input.items {
            let product_id = parse_uuid(&item.product_id, ErrorCode::NotFound, "product")?;
            items.push(json!({ "productId": product_id, "quantity": item.quantity }));
        }
        ctx.services()
            .orders
            .post("/orders", &json!({ "items": items }), Some(caller.claims))
            .await
            .gql()
    }

    /// Cancels an order that has not shipped (the buyer's own, or any for admins).
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Order> {
        let caller = ctx.caller()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "order")?;
        ctx.services()
            .orders
            .post(
                &format!("/orders/{id}/cancel"),
                &json!({}),
                Some(caller.claims),
            )
            .await
            .gql()
    }

    async fn update_order_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: OrderStatus,
    ) -> GqlResult<Order> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "order")?;
        ctx.services()
            .orders
            .post(
                &format!("/orders/{id}/status"),
                &json!({ "status": status }),
                Some(caller.claims),
            )
            .await
            .gql()
    }
}
