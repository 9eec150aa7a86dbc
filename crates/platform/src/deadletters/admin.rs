//! An admin's hands on one service's dead letters, as the gateway uses them: list, replay,
//! replay all, discard. [`DeadLettersApi`] is the one way to call them, with two
//! implementations: [`DeadLetterAdmin`], in the service's own process (no HTTP, no JSON, no
//! second token check), and [`DeadLettersOverHttp`], across processes with a service
//! credential. The routes of [`router`] serve the second with the first.

use async_trait::async_trait;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DeadLetter, DeadLetters, MAX_LISTED, ReplayError};
use crate::auth::{Caller, Claims, TokenVerifier};
use crate::bus::Bus;
use crate::error::{ApiError, ApiResult};
use crate::http::ServiceClient;

/// One service's dead letters, acting for a signed-in admin (FORBIDDEN for anyone else).
#[async_trait]
pub trait DeadLettersApi: Send + Sync + 'static {
    /// The service that keeps them; its queues are named after it (`orders.…`).
    fn service(&self) -> &'static str;
    /// The newest `first` (1..=500, BAD_USER_INPUT otherwise), of one queue or of all.
    async fn list(
        &self,
        acting: &Claims,
        queue: Option<&str>,
        first: i64,
    ) -> ApiResult<Vec<DeadLetter>>;
    /// Delivers it to its queue once more. NOT_FOUND if this service keeps no dead letter
    /// with this id; BAD_USER_INPUT if it was no event (it can only be discarded).
    async fn replay(&self, acting: &Claims, id: Uuid) -> ApiResult<()>;
    /// Replays every dead letter (of one queue, if named); how many.
    async fn replay_all(&self, acting: &Claims, queue: Option<&str>) -> ApiResult<u64>;
    /// Drops it for good; NOT_FOUND if this service keeps no dead letter with this id.
    async fn discard(&self, acting: &Claims, id: Uuid) -> ApiResult<()>;
}

/// A service's dead letters and the bus that replays them, in the service's process.
#[derive(Clone, Debug)]
pub struct DeadLetterAdmin {
    service: &'static str,
    letters: DeadLetters,
    bus: Bus,
}

impl DeadLetterAdmin {
    pub fn new(service: &'static str, letters: DeadLetters, bus: Bus) -> DeadLetterAdmin {
        DeadLetterAdmin {
            service,
            letters,
            bus,
        }
    }
}

fn admin_only(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage dead letters"))
    }
}

fn no_such_letter() -> ApiError {
    ApiError::not_found("no such dead letter")
}

#[async_trait]
impl DeadLettersApi for DeadLetterAdmin {
    fn service(&self) -> &'static str {
        self.service
    }

    async fn list(
        &self,
        acting: &Claims,
        queue: Option<&str>,
        first: i64,
    ) -> ApiResult<Vec<DeadLetter>> {
        admin_only(acting)?;
        if !(1..=MAX_LISTED).contains(&first) {
            return Err(ApiError::bad_input(format!(
                "first must be between 1 and {MAX_LISTED}"
            )));
        }
        Ok(self.letters.list(queue, first).await?)
    }

    async fn replay(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        admin_only(acting)?;
        match self.letters.replay(id, &self.bus).await {
            Ok(true) => {
                tracing::info!(admin = %acting.sub, %id, "replayed a dead letter");
                Ok(())
            }
            Ok(false) => Err(no_such_letter()),
            Err(e @ ReplayError::NotAnEvent(_)) => Err(ApiError::bad_input(e.to_string())),
            Err(ReplayError::Unexpected(e)) => Err(e.into()),
        }
    }

    async fn replay_all(&self, acting: &Claims, queue: Option<&str>) -> ApiResult<u64> {
        admin_only(acting)?;
        let replayed = self.letters.replay_all(queue, &self.bus).await?;
        tracing::info!(admin = %acting.sub, queue, replayed, "replayed dead letters");
        Ok(replayed)
    }

    async fn discard(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        admin_only(acting)?;
        if !self.letters.discard(id).await? {
            return Err(no_such_letter());
        }
        tracing::info!(admin = %acting.sub, %id, "discarded a dead letter");
        Ok(())
    }
}

/// The query of `GET /dead-letters` and `POST /dead-letters/replay-all`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    queue: Option<String>,
    first: Option<i64>,
}

impl ListQuery {
    fn encoded(&self) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if let Some(queue) = &self.queue {
            pairs.append_pair("queue", queue);
        }
        if let Some(first) = self.first {
            pairs.append_pair("first", &first.to_string());
        }
        pairs.finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Replayed {
    replayed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReplayedOne {
    replayed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Discarded {
    discarded: bool,
}

/// The dead letters of a service in another process.
#[derive(Clone, Debug)]
pub struct DeadLettersOverHttp {
    service: ServiceClient,
}

impl DeadLettersOverHttp {
    /// `service` calls the service that keeps them.
    pub fn new(service: ServiceClient) -> DeadLettersOverHttp {
        DeadLettersOverHttp { service }
    }
}

#[async_trait]
impl DeadLettersApi for DeadLettersOverHttp {
    fn service(&self) -> &'static str {
        self.service.service()
    }

    async fn list(
        &self,
        acting: &Claims,
        queue: Option<&str>,
        first: i64,
    ) -> ApiResult<Vec<DeadLetter>> {
        let query = ListQuery {
            queue: queue.map(str::to_owned),
            first: Some(first),
        };
        self.service
            .get(&format!("/dead-letters?{}", query.encoded()), Some(acting))
            .await
    }

    async fn replay(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        let _: ReplayedOne = self
            .service
            .post(&format!("/dead-letters/{id}/replay"), &(), Some(acting))
            .await?;
        Ok(())
    }

    async fn replay_all(&self, acting: &Claims, queue: Option<&str>) -> ApiResult<u64> {
        let query = ListQuery {
            queue: queue.map(str::to_owned),
            first: None,
        };
        let answer: Replayed = self
            .service
            .post(
                &format!("/dead-letters/replay-all?{}", query.encoded()),
                &(),
                Some(acting),
            )
            .await?;
        Ok(answer.replayed)
    }

    async fn discard(&self, acting: &Claims, id: Uuid) -> ApiResult<()> {
        let _: Discarded = self
            .service
            .delete(&format!("/dead-letters/{id}"), Some(acting))
            .await?;
        Ok(())
    }
}

#[derive(Clone)]
struct AdminState<V> {
    admin: DeadLetterAdmin,
    verifier: V,
}

impl<V> FromRef<AdminState<V>> for TokenVerifier
where
    TokenVerifier: FromRef<V>,
{
    fn from_ref(state: &AdminState<V>) -> TokenVerifier {
        TokenVerifier::from_ref(&state.verifier)
    }
}

/// The admins' routes over a service's dead letters, to merge into its API router; they
/// serve [`DeadLettersOverHttp`]. `verifier` is a [`TokenVerifier`] or any state that
/// yields one.
///
/// - `GET /dead-letters?queue=&first=50` → `[DeadLetter]`, newest first (`first` 1..=500)
/// - `POST /dead-letters/{id}/replay` → `{"replayed": true}`, or 404
/// - `POST /dead-letters/replay-all?queue=` → `{"replayed": n}`
/// - `DELETE /dead-letters/{id}` → `{"discarded": true}`, or 404
pub fn router<V>(admin: DeadLetterAdmin, verifier: V) -> Router
where
    V: Clone + Send + Sync + 'static,
    TokenVerifier: FromRef<V>,
{
    Router::new()
        .route("/dead-letters", get(list_dead_letters::<V>))
        .route("/dead-letters/replay-all", post(replay_all::<V>))
        .route("/dead-letters/{id}/replay", post(replay_one::<V>))
        .route("/dead-letters/{id}", delete(discard_one::<V>))
        .with_state(AdminState { admin, verifier })
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_input(e.body_text()))
}

fn letter_id(id: &str) -> ApiResult<Uuid> {
    id.parse().map_err(|_| no_such_letter())
}

async fn list_dead_letters<V>(
    State(state): State<AdminState<V>>,
    caller: Caller,
    asked: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<DeadLetter>>> {
    let asked = query(asked)?;
    let letters = state
        .admin
        .list(&caller.0, asked.queue.as_deref(), asked.first.unwrap_or(50))
        .await?;
    Ok(Json(letters))
}

async fn replay_all<V>(
    State(state): State<AdminState<V>>,
    caller: Caller,
    asked: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Replayed>> {
    let asked = query(asked)?;
    let replayed = state
        .admin
        .replay_all(&caller.0, asked.queue.as_deref())
        .await?;
    Ok(Json(Replayed { replayed }))
}

async fn replay_one<V>(
    State(state): State<AdminState<V>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReplayedOne>> {
    state.admin.replay(&caller.0, letter_id(&id)?).await?;
    Ok(Json(ReplayedOne { replayed: true }))
}

async fn discard_one<V>(
    State(state): State<AdminState<V>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Discarded>> {
    state.admin.discard(&caller.0, letter_id(&id)?).await?;
    Ok(Json(Discarded { discarded: true }))
}
