//! Orders and their lifecycle (the orders service).

use async_graphql::{Context, ID, Object};
use herald_orders::client::{AllOrdersQuery, ListQuery, PlaceOrderRequest};
use herald_orders::domain::LineInput;
use herald_platform::ErrorCode;

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
        let query = ListQuery {
            first: Some(first.unwrap_or(20).into()),
        };
        let orders = ctx
            .services()
            .orders
            .my_orders(caller.claims, &query)
            .await
            .gql()?;
        Ok(orders.into_iter().map(Order::from).collect())
    }

    /// Every customer's orders, newest first, only those in `status` if given (ADMIN).
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
        status: Option<OrderStatus>,
    ) -> GqlResult<Vec<Order>> {
        let caller = ctx.admin()?;
        let query = AllOrdersQuery {
            first: Some(first.unwrap_or(20).into()),
            status: status.map(Into::into),
        };
        let orders = ctx
            .services()
            .orders
            .all_orders(caller.claims, &query)
            .await
            .gql()?;
        Ok(orders.into_iter().map(Order::from).collect())
    }

    /// One of the caller's orders (admins: any order), or null.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Order>> {
        let caller = ctx.caller()?;
        let Ok(id) = parse_uuid(&id, ErrorCode::NotFound, "order") else {
            return Ok(None);
        };
        match ctx.services().orders.order(caller.claims, id).await {
            Ok(order) => Ok(Some(order.into())),
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
            items.push(LineInput {
                product_id: product_id.to_string(),
                quantity: item.quantity.into(),
            });
        }
        ctx.services()
            .orders
            .place_order(caller.claims, &PlaceOrderRequest { items })
            .await
            .map(Order::from)
            .gql()
    }

    /// Cancels an order that has not shipped (the buyer's own, or any for admins).
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Order> {
        let caller = ctx.caller()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "order")?;
        ctx.services()
            .orders
            .cancel(caller.claims, id)
            .await
            .map(Order::from)
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
            .update_status(caller.claims, id, status.into())
            .await
            .map(Order::from)
            .gql()
    }
}
