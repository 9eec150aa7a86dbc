//! A user's recommendations and the browsing signals behind them, as other services use
//! them. [`RecommendationsApi`] is the one way to call them, with two implementations:
//! [`Recommendations`] itself, in the same process (no HTTP, no JSON, no second token
//! check), and [`RecommendationsOverHttp`], across processes with a service credential.
//! The HTTP routes of `api` serve the second with the first, so both run the same code.

use herald_platform::auth::Claims;
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

use crate::activity::{Activity, ActivityInput};
use crate::advisor::{Advisor, MAX_LIMIT};
use crate::recommender::Recommendation;

/// Recommendations returned when the request does not say how many.
pub const DEFAULT_LIMIT: usize = 10;

/// What recording an activity answers over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub recorded: bool,
}

/// Recommendations and activity, acting for a signed-in user.
#[async_trait::async_trait]
pub trait RecommendationsApi: Send + Sync + 'static {
    /// Records a browsing signal of the user's: BAD_USER_INPUT for a malformed one,
    /// NOT_FOUND for a product the catalog does not have.
    async fn record_activity(&self, acting: &Claims, activity: &ActivityInput) -> ApiResult<()>;
    /// The user's top picks, best first: `limit` of them (1 to [`MAX_LIMIT`],
    /// BAD_USER_INPUT otherwise), [`DEFAULT_LIMIT`] when it is `None`.
    async fn recommendations(
        &self,
        acting: &Claims,
        limit: Option<i64>,
    ) -> ApiResult<Vec<Recommendation>>;
}

pub(crate) fn bad_limit() -> ApiError {
    ApiError::bad_input(format!("limit must be 1 to {MAX_LIMIT}"))
}

/// Recommendations over the service's advisor.
#[derive(Clone)]
pub struct Recommendations {
    advisor: Advisor,
}

impl Recommendations {
    pub fn new(advisor: Advisor) -> Recommendations {
        Recommendations { advisor }
    }
}

#[async_trait::async_trait]
impl RecommendationsApi for Recommendations {
    async fn record_activity(&self, acting: &Claims, activity: &ActivityInput) -> ApiResult<()> {
        let activity = Activity::parse(activity)?;
        self.advisor.record_activity(acting.sub, &activity).await
    }

    async fn recommendations(
        &self,
        acting: &Claims,
        limit: Option<i64>,
    ) -> ApiResult<Vec<Recommendation>> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(limit) => usize::try_from(limit)
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(bad_limit)?,
        };
        self.advisor.recommendations(acting.sub, limit).await
    }
}

/// The recommendations of a recommendations service in another process.
#[derive(Clone, Debug)]
pub struct RecommendationsOverHttp {
    service: ServiceClient,
}

impl RecommendationsOverHttp {
    /// `service` calls the recommendations service.
    pub fn new(service: ServiceClient) -> RecommendationsOverHttp {
        RecommendationsOverHttp { service }
    }
}

#[async_trait::async_trait]
impl RecommendationsApi for RecommendationsOverHttp {
    async fn record_activity(&self, acting: &Claims, activity: &ActivityInput) -> ApiResult<()> {
        let _: Recorded = self
            .service
            .post("/activity", activity, Some(acting))
            .await?;
        Ok(())
    }

    async fn recommendations(
        &self,
        acting: &Claims,
        limit: Option<i64>,
    ) -> ApiResult<Vec<Recommendation>> {
        let path = match limit {
            Some(limit) => format!("/recommendations?limit={limit}"),
            None => "/recommendations".to_owned(),
        };
        self.service.get(&path, Some(acting)).await
    }
}
