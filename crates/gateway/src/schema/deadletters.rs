//! Dead letters: messages a consumer gave up on, kept by the service that consumes them.
//! Admins list, replay and discard them here; the gateway asks every consuming service.

use async_graphql::{Context, ID, Object};
use futures::future::join_all;
use herald_platform::deadletters::DeadLettersApi;
use herald_platform::{ApiError, ErrorCode};

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, to_graphql};
use crate::limits::list_cost;
use crate::types::DeadLetter;

/// The services that may hold dead letters of `queue` (queues are named after their service).
fn owners<'a>(ctx: &'a Context<'_>, queue: Option<&str>) -> Vec<&'a dyn DeadLettersApi> {
    let service = queue.map(|q| q.split('.').next().unwrap_or(q));
    ctx.services()
        .dead_letters
        .iter()
        .map(|letters| letters.as_ref())
        .filter(|letters| service.is_none_or(|s| letters.service() == s))
        .collect()
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
        let answers = join_all(
            owners(ctx, queue.as_deref())
                .into_iter()
                .map(|letters| letters.list(caller.claims, queue.as_deref(), i64::from(first))),
        )
        .await;
        let mut all = Vec::new();
        for answer in answers {
            all.extend(answer.gql()?);
        }
        all.sort_by_key(|letter| std::cmp::Reverse(letter.failed_at));
        all.truncate(usize::try_from(first).unwrap_or(0));
        Ok(all.into_iter().map(DeadLetter::from).collect())
    }
}

#[derive(Default)]
pub struct DeadLetterMutation;

#[Object]
impl DeadLetterMutation {
    /// Delivers a dead letter to its queue once more (ADMIN). Handlers are idempotent, so
    /// a message that had partly succeeded has no second effect.
    async fn replay_dead_letter(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "dead letter")?;
        for letters in owners(ctx, None) {
            match letters.replay(caller.claims, id).await {
                Ok(()) => return Ok(true),
                Err(e) if e.code() == ErrorCode::NotFound => continue,
                Err(e) => return Err(to_graphql(e)),
            }
        }
        Err(no_dead_letter(id))
    }

    /// Replays every dead letter (of one queue, if named); returns how many (ADMIN).
    async fn replay_all_dead_letters(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
    ) -> GqlResult<i32> {
        let caller = ctx.admin()?;
        let mut total = 0u64;
        for letters in owners(ctx, queue.as_deref()) {
            total += letters
                .replay_all(caller.claims, queue.as_deref())
                .await
                .gql()?;
        }
        Ok(i32::try_from(total).unwrap_or(i32::MAX))
    }

    /// Drops a dead letter for good (ADMIN).
    async fn discard_dead_letter(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "dead letter")?;
        for letters in owners(ctx, None) {
            match letters.discard(caller.claims, id).await {
                Ok(()) => return Ok(true),
                Err(e) if e.code() == ErrorCode::NotFound => continue,
                Err(e) => return Err(to_graphql(e)),
            }
        }
        Err(no_dead_letter(id))
    }
}

fn no_dead_letter(id: uuid::Uuid) -> async_graphql::Error {
    to_graphql(ApiError::not_found(format!("no dead letter {id}")))
}
