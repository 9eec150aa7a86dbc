//! What every resolver knows about the request: the caller's verified claims and the
//! service clients.

use async_graphql::Context;
use std::sync::Arc;

use herald_notifications::inbox::{InboxApi, InboxVersion};
use herald_notifications::promotions::PromotionsApi;
use herald_orders::client::OrdersApi;
use herald_platform::auth::Claims;
use herald_platform::deadletters::DeadLettersApi;
use herald_platform::{ApiError, ErrorCode};
use herald_products::client::CatalogApi;
use herald_recommendations::recommendations::RecommendationsApi;
use herald_scheduler::client::SchedulerApi;
use herald_users::accounts::AccountsApi;

use crate::error::{GqlResult, gql_error, to_graphql};
use crate::kept::ReadVersions;

/// The services behind the gateway, as typed clients: in process when the service runs
/// here, over HTTP (with the gateway's service credential) otherwise.
#[derive(Clone)]
pub struct Services {
    pub inbox: Arc<dyn InboxApi>,
    pub catalog: Arc<dyn CatalogApi>,
    pub accounts: Arc<dyn AccountsApi>,
    pub recommendations: Arc<dyn RecommendationsApi>,
    pub orders: Arc<dyn OrdersApi>,
    pub promotions: Arc<dyn PromotionsApi>,
    pub scheduler: Arc<dyn SchedulerApi>,
    /// Every consuming service's dead letters.
    pub dead_letters: Vec<Arc<dyn DeadLettersApi>>,
}

/// The request's credentials as the gateway verified them (once): the services hear the
/// claims, carried in the gateway's service credential, never the token.
#[derive(Clone)]
pub struct RequestAuth {
    claims: Option<Result<Claims, (ErrorCode, String)>>,
}

impl RequestAuth {
    /// A token that holds: its verified claims.
    pub fn signed_in(claims: Claims) -> RequestAuth {
        RequestAuth {
            claims: Some(Ok(claims)),
        }
    }

    /// A token that was presented and is refused, and why.
    pub fn refused(code: ErrorCode, message: String) -> RequestAuth {
        RequestAuth {
            claims: Some(Err((code, message))),
        }
    }

    pub fn anonymous() -> RequestAuth {
        RequestAuth { claims: None }
    }

    /// Why the token presented is refused, if one was and it is.
    pub fn refusal(&self) -> Option<&str> {
        match &self.claims {
            Some(Err((_, message))) => Some(message),
            _ => None,
        }
    }

    /// The signed-in user, if the token holds.
    pub fn user_id(&self) -> Option<uuid::Uuid> {
        self.claims().map(|claims| claims.sub)
    }

    /// The verified claims, if the token holds.
    pub fn claims(&self) -> Option<&Claims> {
        match &self.claims {
            Some(Ok(claims)) => Some(claims),
            _ => None,
        }
    }

    /// How long the token holds yet, if it does.
    pub fn expires_in(&self) -> Option<std::time::Duration> {
        match &self.claims {
            Some(Ok(claims)) => {
                let left = claims.exp - chrono::Utc::now().timestamp();
                Some(std::time::Duration::from_secs(
                    u64::try_from(left).unwrap_or(0),
                ))
            }
            _ => None,
        }
    }
}

/// A signed-in caller: their verified claims, which service calls act for.
pub struct Caller<'a> {
    pub claims: &'a Claims,
}

pub trait ContextExt {
    fn services(&self) -> &Services;
    /// The address the request came from, as the edge determined it.
    fn client(&self) -> Option<String>;
    fn caller(&self) -> GqlResult<Caller<'_>>;
    /// The caller, who must be an admin (FORBIDDEN otherwise).
    fn admin(&self) -> GqlResult<Caller<'_>>;
    /// A root field's answer was read from the caller's inbox under `version` (None: it
    /// must not be kept); see [`crate::kept`].
    fn read_under(&self, version: Option<InboxVersion>);
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Services {
        self.data_unchecked::<Services>()
    }

    fn client(&self) -> Option<String> {
        self.data_opt::<crate::edge::client::ClientAddr>()
            .map(|client| client.to_string())
    }

    fn caller(&self) -> GqlResult<Caller<'_>> {
        let auth = self.data_opt::<RequestAuth>();
        match auth.and_then(|a| a.claims.as_ref()) {
            Some(Ok(claims)) => Ok(Caller { claims }),
            Some(Err((code, message))) => Err(to_graphql(ApiError::new(*code, message.clone()))),
            None => Err(gql_error(
                ErrorCode::Unauthenticated,
                "sign in: send Authorization: Bearer <token>",
            )),
        }
    }

    fn admin(&self) -> GqlResult<Caller<'_>> {
        let caller = self.caller()?;
        if !caller.claims.is_admin() {
            return Err(gql_error(
                ErrorCode::Forbidden,
                "this operation is for admins",
            ));
        }
        Ok(caller)
    }

    fn read_under(&self, version: Option<InboxVersion>) {
        if let Some(versions) = self.data_opt::<ReadVersions>() {
            versions.push(version);
        }
    }
}
