//! Who a request's token says the caller is, verified once here and checked against the
//! account as it is now: a token older than its account's credentials version (a new
//! password, a new role) or of an account that no longer exists is refused. Versions are
//! asked of the users service and kept for a few seconds, so a revocation holds within
//! [`FRESH`] on every gateway. A token's signature is checked once per gateway: its
//! verified claims are kept (bounded) until it expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_platform::auth::{Claims, TokenVerifier};
use herald_platform::{ApiError, ErrorCode};
use herald_users::accounts::AccountsApi;
use uuid::Uuid;

use crate::context::RequestAuth;

/// How long a known version is trusted before it is asked again.
pub const FRESH: Duration = Duration::from_secs(5);
/// Accounts whose versions are kept at once.
const KEPT: u64 = 100_000;

/// What is known of an account: its version (`None`: no such account) and when it was
/// learnt.
#[derive(Debug, Clone, Copy)]
struct Known {
    version: Option<i64>,
    at: Instant,
}

pub struct Identity {
    verifier: TokenVerifier,
    users: Arc<dyn AccountsApi>,
    known: moka::sync::Cache<Uuid, Known>,
    /// Tokens whose signature was checked, with their claims.
    verified: moka::sync::Cache<Arc<str>, Claims>,
}

impl Identity {
    pub fn new(verifier: TokenVerifier, users: Arc<dyn AccountsApi>) -> Identity {
        Identity {
            verifier,
            users,
            known: moka::sync::Cache::builder()
                .max_capacity(KEPT)
                .time_to_live(Duration::from_secs(600))
                .build(),
            verified: moka::sync::Cache::builder()
                .max_capacity(KEPT)
                .time_to_live(Duration::from_secs(900))
                .build(),
        }
    }

    /// The request's credentials: anonymous without a token, refused with a reason, or the
    /// verified claims of an account whose credentials have not changed since.
    pub async fn authenticate(&self, token: Option<&str>) -> RequestAuth {
        let Some(token) = token else {
            return RequestAuth::anonymous();
        };
        let claims = match self.verify(token) {
            Ok(claims) => claims,
            Err(e) => return RequestAuth::refused(e.code(), e.to_string()),
        };
        match self.version(&claims).await {
            Some(Some(version)) if claims.ver < version => RequestAuth::refused(
                ErrorCode::Unauthenticated,
                "this token was issued before the account's password or role changed: \
                 sign in again"
                    .to_owned(),
            ),
            Some(None) => RequestAuth::refused(
                ErrorCode::Unauthenticated,
                "the account of this token no longer exists".to_owned(),
            ),
            _ => RequestAuth::signed_in(claims),
        }
    }

    /// The token's claims: checked once, then kept until the token expires (an expired
    /// one is checked again, and refused as such).
    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.verified.get(token)
            && claims.exp > chrono::Utc::now().timestamp()
        {
            return Ok(claims);
        }
        let claims = self.verifier.verify(token)?;
        self.verified.insert(Arc::from(token), claims.clone());
        Ok(claims)
    }

    /// The account's current version (`Some(None)`: it does not exist), fresh within
    /// [`FRESH`]; when the users service cannot say, the last known one, or `None` (the
    /// signature and expiry alone then decide, until it answers again).
    async fn version(&self, claims: &Claims) -> Option<Option<i64>> {
        let known = self.known.get(&claims.sub);
        if let Some(known) = known
            && known.at.elapsed() < FRESH
        {
            return Some(known.version);
        }
        let version = match self.users.token_version(claims.sub).await {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(error = %e, "the users service did not say a token's version");
                metrics::counter!("gateway_token_version_unknown_total").increment(1);
                return known.map(|k| k.version);
            }
        };
        self.known.insert(
            claims.sub,
            Known {
                version,
                at: Instant::now(),
            },
        );
        Some(version)
    }
}
