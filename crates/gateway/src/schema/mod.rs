//! The GraphQL schema: the contract's operations, each a call to the owning service.

mod catalog;
mod deadletters;
mod notifications;
mod orders;
mod promotions;
mod recommendations;
mod scheduler;
mod users;

use async_graphql::{ID, MergedObject, MergedSubscription, Schema};
use herald_platform::ErrorCode;

use crate::error::{GqlResult, gql_error};

pub type HeraldSchema = Schema<Query, Mutation, Subscription>;

#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    notifications::NotificationQuery,
    catalog::CatalogQuery,
    orders::OrderQuery,
    deadletters::DeadLetterQuery,
    recommendations::RecommendationQuery,
    scheduler::SchedulerQuery,
    promotions::PromotionQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    users::UserMutation,
    notifications::NotificationMutation,
    catalog::CatalogMutation,
    orders::OrderMutation,
    deadletters::DeadLetterMutation,
    recommendations::RecommendationMutation,
    scheduler::SchedulerMutation,
    promotions::PromotionMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(notifications::NotificationSubscription);

/// Ids are UUIDs; anything else cannot name an existing thing.
pub(crate) fn parse_uuid(id: &ID, code: ErrorCode, what: &str) -> GqlResult<uuid::Uuid> {
    id.parse::<uuid::Uuid>()
        .map_err(|_| gql_error(code, format!("no {what} {}", id.as_str())))
}
