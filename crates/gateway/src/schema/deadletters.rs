//! Dead letters: messages a consumer gave up on, kept by the service that consumes them.
//! Admins list, replay and discard them here; the gateway asks every consuming service.

use async_graphql::{Context, ID, Object};
use futures::future::join_all;
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::json;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error, to_graphql};
use crate::limits::list_cost;
use crate::types::DeadLetter;

/// The services with consumers, and so with dead letters.
fn consuming<'a>(ctx: &'a Context<'_>) -> [&'a ServiceClient; 6] {
    let services = ctx.services();
    [
        &services.users,
        &services.products,
        &services.orders,
        &services.recommendations,
        &services.notifications,
        &services.scheduler,
    ]
}

/// The services that may hold dead letters of `queue` (queues are named after their service).
fn owners<'a>(ctx: &'a Context<'_>, queue: Option<&str>) -> Vec<&'a ServiceClient> {
    let service = queue.map(|q| q.split('.').next().unwrap_or(q));
    consuming(ctx)
        .into_iter()
        .filter(|c| service.is_none_or(|s| c.service() == s))
        .collect()
}

fn query_string(pairs: &[(&str, String)]) -> String {
    let mut url = url::Url::parse("http://query.invalid/").expect("static URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

#[derive(Default)]
pub struct DeadLetterQuery;

#[Object]
impl DeadLetterQuery {
    /// Newest first, across every consuming service (ADMIN).
    #[graphql(complexity = "list_cost(first.unwrap_or(50), child_complexity)")]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
    ) -> GqlResult<Vec<DeadLetter>> {
        let caller = ctx.admin()?;
        let first = first.unwrap_or(50);
        if !(1..=500).contains(&first) {
            return Err(gql_error(
                ErrorCode::BadUserInput,
                "first must be between 1 and 500",
            ));
        }
        let mut pairs = vec![("first", first.to_string())];
        pairs.extend(queue.clone().map(|q| ("queue", q)));
        let path = format!("/dead-letters?{}", query_string(&pairs));
        let answers = join_all(
            owners(ctx, queue.as_deref())
                .into_iter()
                .map(|c| c.get::<Vec<DeadLetter>>(&path, Some(caller.claims))),
        )
        .await;
        let mut all = Vec::new();
        for answer in answers {
            all.extend(answer.gql()?);
        }
        all.sort_by_key(|letter| std::cmp::Reverse(letter.failed_at));
        all.truncate(first as usize);
        Ok(all)
    }
}

#[derive(Default)]
pub struct DeadLetterMutation;

#[derive(Deserialize)]
struct Replayed {
    replayed: u64,
}

#[derive(Deserialize)]
struct ReplayedOne {
    replayed: bool,
}

#[Object]
impl DeadLetterMutation {
    /// Delivers a dead letter to its queue once more (ADMIN). Handlers are idempotent, so
    /// a message that had partly succeeded has no second effect.
    async fn replay_dead_letter(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "dead letter")?;
        let path = format!("/dead-letters/{id}/replay");
        for client in consuming(ctx) {
            match client
                .post::<_, ReplayedOne>(&path, &json!({}), Some(caller.claims))
                .await
            {
                Ok(answer) => return Ok(answer.replayed),
                Err(e) if e.code() == ErrorCode::NotFound => continue,
                Err(e) => return Err(to_graphql(e)),
            }
        }
        Err(gql_error(
            ErrorCode::NotFound,
            format!("no dead letter {id}"),
        ))
    }

    /// Replays every dead letter (of one queue, if named); returns how many (ADMIN).
    async fn replay_all_dead_letters(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
    ) -> GqlResult<i32> {
        let caller = ctx.admin()?;
        let pairs: Vec<(&str, String)> = queue.clone().map(|q| ("queue", q)).into_iter().collect();
        let path = format!("/dead-letters/replay-all?{}", query_string(&pairs));
        let mut total = 0u64;
        for client in owners(ctx, queue.as_deref()) {
            let answer: Replayed = client
                .post(&path, &json!({}), Some(caller.claims))
                .await
                .gql()?;
            total += answer.replayed;
        }
        Ok(i32::try_from(total).unwrap_or(i32::MAX))
    }

    /// Drops a dead letter for good (ADMIN).
    async fn discard_dead_letter(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "dead letter")?;
        let path = format!("/dead-letters/{id}");
        for client in consuming(ctx) {
            match client
                .delete::<serde_json::Value>(&path, Some(caller.claims))
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) if e.code() == ErrorCode::NotFound => continue,
                Err(e) => return Err(to_graphql(e)),
            }
        }
        Err(to_graphql(ApiError::not_found(format!(
            "no dead letter {id}"
        ))))
    }
}
