//! Access tokens: EdDSA (Ed25519) JWTs. Only the users service holds a signing key; every
//! other service verifies with the public keys it fetched from the users service.
//!
//! Service credentials: calls between services carry a short-lived HS256 JWT signed with
//! the deployment's service key (`HERALD_SERVICE_KEY`), naming the calling service, the
//! service called, and the user it acts for (claims the caller verified). A service's API
//! takes only these: a user's own token on a service's port is refused with 403, since
//! users reach Herald through the gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use herald_events::Role;

use crate::error::ApiError;

const ISSUER: &str = "herald";
const SERVICE_ISSUER: &str = "herald-services";
/// How long a service credential holds: one call, with room for clock skew and retries.
const SERVICE_TOKEN_TTL: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// The version of the user's credentials when the token was issued; a token older
    /// than the account's current version is refused.
    #[serde(default)]
    pub ver: i64,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A private Ed25519 key, stored as PKCS#8.
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public: PublicKey,
}

/// A public key in JWK form (`kty` OKP, `crv` Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kty: String,
    pub crv: String,
    pub alg: String,
    pub kid: String,
    /// The raw 32-byte public key, base64url without padding.
    pub x: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySet {
    pub keys: Vec<PublicKey>,
}

impl SigningKey {
    pub fn generate() -> anyhow::Result<SigningKey> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        SigningKey::from_pkcs8(&Uuid::now_v7().to_string(), pkcs8.as_ref())
    }

    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> anyhow::Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| anyhow::anyhow!("invalid Ed25519 PKCS#8 key: {e}"))?;
        let public = PublicKey {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            alg: "EdDSA".to_owned(),
            kid: kid.to_owned(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        };
        Ok(SigningKey {
            kid: kid.to_owned(),
            pkcs8: pkcs8.to_vec(),
            encoding: EncodingKey::from_ed_der(pkcs8),
            public,
        })
    }

    /// A key given by configuration: base64 (standard alphabet) of a PKCS#8 Ed25519 key.
    /// Its id is derived from the public key, so every replica names it alike.
    pub fn from_base64(encoded: &str) -> anyhow::Result<SigningKey> {
        use base64::engine::general_purpose::STANDARD;
        let pkcs8 = STANDARD.decode(encoded.trim()).context("not base64")?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 Ed25519 key: {e}"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, pair.public_key().as_ref());
        let kid = format!("cfg-{}", URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]));
        SigningKey::from_pkcs8(&kid, &pkcs8)
    }

    /// This key as configuration takes it (see [`SigningKey::from_base64`]).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.pkcs8)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Issues a token for `user` at credentials version `ver`, valid for `ttl`.
    pub fn issue(&self, user: Uuid, role: Role, ver: i64, ttl: Duration) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            sub: user,
            role,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            ver,
        })
    }

    /// Signs arbitrary claims (tests use it for expired tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing token")
    }
}

/// Checks tokens against the users service's public keys, and service credentials
/// against the service key.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Validation,
    services: Option<ServiceCredentials>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TokenVerifier {
    pub fn new(keys: &[PublicKey]) -> anyhow::Result<TokenVerifier> {
        let mut map = HashMap::new();
        for key in keys {
            let raw = URL_SAFE_NO_PAD
                .decode(&key.x)
                .context("public key is not base64url")?;
            // The RustCrypto verifier reads the first 32 bytes of the key as they are.
            anyhow::ensure!(
                raw.len() == 32,
                "an Ed25519 public key has 32 bytes, not {}",
                raw.len()
            );
            map.insert(key.kid.clone(), DecodingKey::from_ed_der(&raw));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(TokenVerifier {
            keys: Arc::new(map),
            validation,
            services: None,
        })
    }

    /// This verifier as `service` uses it: it takes service credentials addressed to
    /// `service` and signed with `key`.
    pub fn for_service(&self, key: &ServiceKey, service: &'static str) -> TokenVerifier {
        TokenVerifier {
            services: Some(key.credentials(service)),
            ..self.clone()
        }
    }

    /// The service credentials this verifier checks (and its service signs with).
    pub fn service_credentials(&self) -> Option<&ServiceCredentials> {
        self.services.as_ref()
    }

    /// A service credential addressed to this service.
    pub fn verify_service(&self, token: &str) -> Result<ServiceClaims, ApiError> {
        let credentials = self.services.as_ref().ok_or_else(|| {
            ApiError::Unexpected(anyhow::anyhow!("this verifier has no service key"))
        })?;
        credentials.verify(token)
    }

    /// Fetches the key set from the users service, retrying until `wait` has passed
    /// (services started together come up in any order).
    pub async fn fetch(users_url: &str, wait: Duration) -> anyhow::Result<TokenVerifier> {
        let url = format!("{}/keys", users_url.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(50);
        loop {
            let attempt = async {
                let set: KeySet = client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                anyhow::Ok(set)
            };
            match attempt.await {
                Ok(set) => return TokenVerifier::new(&set.keys),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e).with_context(|| {
                        format!(
                            "fetching token keys from the users service at {url} (HERALD_USERS_URL)"
                        )
                    });
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthenticated("invalid or expired token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(invalid)?;
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Err(ApiError::unauthenticated("token expired"))
                }
                _ => Err(invalid()),
            },
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// The token of an `Authorization` value: `Bearer <token>`, the scheme in any case (RFC
/// 9110 §11.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A deployment's secret for service credentials: at least 32 bytes.
#[derive(Clone)]
pub struct ServiceKey {
    secret: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(…)")
    }
}

impl ServiceKey {
    /// The fewest bytes a key may have (HS256's own size).
    pub const MIN_BYTES: usize = 32;

    /// A new random key (for services that all run in one process).
    pub fn generate() -> ServiceKey {
        use rand::Rng;
        let mut secret = vec![0u8; Self::MIN_BYTES];
        rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut secret);
        ServiceKey {
            secret: Arc::new(secret),
        }
    }

    /// A key given by configuration: base64 (standard alphabet) of at least 32 bytes.
    pub fn from_base64(encoded: &str) -> anyhow::Result<ServiceKey> {
        use base64::engine::general_purpose::STANDARD;
        let secret = STANDARD.decode(encoded.trim()).context("not base64")?;
        anyhow::ensure!(
            secret.len() >= Self::MIN_BYTES,
            "{} bytes; a service key has at least {} (`herald keygen --service` prints one)",
            secret.len(),
            Self::MIN_BYTES
        );
        Ok(ServiceKey {
            secret: Arc::new(secret),
        })
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.secret.as_slice())
    }

    /// The credentials of `service`: what it signs its calls with and checks calls to it by.
    pub fn credentials(&self, service: &'static str) -> ServiceCredentials {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[SERVICE_ISSUER]);
        validation.set_audience(&[service]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        ServiceCredentials {
            service,
            encoding: Arc::new(
                EncodingKey::from_secret(&self.secret).expect("a service key is never empty"),
            ),
            decoding: Arc::new(
                DecodingKey::from_secret(&self.secret).expect("a service key is never empty"),
            ),
            validation: Arc::new(validation),
        }
    }
}

/// What a service credential says: who calls, whom, and for which user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    pub iss: String,
    /// The calling service.
    pub svc: String,
    /// The service called.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The user the call acts for, as the caller verified them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Claims>,
}

/// One service's side of service credentials: it signs calls as itself and accepts calls
/// addressed to it.
#[derive(Clone)]
pub struct ServiceCredentials {
    service: &'static str,
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials")
            .field("service", &self.service)
            .finish()
    }
}

impl ServiceCredentials {
    /// The service these credentials belong to.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// A credential for one call to `to`, acting for `acting` if a user is behind it.
    pub fn issue(&self, to: &str, acting: Option<&Claims>) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = ServiceClaims {
            iss: SERVICE_ISSUER.to_owned(),
            svc: self.service.to_owned(),
            aud: to.to_owned(),
            iat: now,
            exp: now + SERVICE_TOKEN_TTL,
            act: acting.cloned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a service credential")
    }

    /// A credential addressed to this service. A user's token is FORBIDDEN here (services
    /// take calls from services); anything else unsigned, expired or addressed elsewhere is
    /// UNAUTHENTICATED.
    pub fn verify(&self, token: &str) -> Result<ServiceClaims, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthenticated("invalid service credential"))?;
        if header.alg != Algorithm::HS256 {
            return Err(ApiError::forbidden(
                "this port takes calls from Herald's services only; users call the gateway",
            ));
        }
        jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::unauthenticated("invalid or expired service credential"))
    }
}

/// A call from another service, with the user it acts for if any; rejects a user's own
/// token with FORBIDDEN and anything else with UNAUTHENTICATED.
#[derive(Debug, Clone)]
pub struct ServiceCall(pub ServiceClaims);

impl ServiceCall {
    /// Refuses (FORBIDDEN) calls from any service but `services`.
    pub fn only_from(&self, services: &[&str]) -> Result<(), ApiError> {
        if services.contains(&self.0.svc.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only {} may call this",
                services.join(", ")
            )))
        }
    }

    /// The user behind the call, if any.
    pub fn acting(&self) -> Option<&Claims> {
        self.0.act.as_ref()
    }

    /// The user behind the call; UNAUTHENTICATED when it acts for nobody.
    pub fn acting_user(&self) -> Result<&Claims, ApiError> {
        self.acting()
            .ok_or_else(|| ApiError::unauthenticated("sign in: this call acts for no user"))
    }
}

impl<S> FromRequestParts<S> for ServiceCall
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::unauthenticated("missing service credential"))?;
        Ok(ServiceCall(
            TokenVerifier::from_ref(state).verify_service(token)?,
        ))
    }
}

/// The signed-in user a service call acts for; rejects as [`ServiceCall`] does, and a
/// call for nobody with UNAUTHENTICATED.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let call = ServiceCall::from_request_parts(parts, state).await?;
        call.acting_user().cloned().map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_tampered_ones_do_not() {
        let key = SigningKey::generate().unwrap();
        let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
        let user = Uuid::now_v7();
        let token = key
            .issue(user, Role::Customer, 1, Duration::from_secs(60))
            .unwrap();
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.role, Role::Customer);

        // Flip the role in the payload: the signature no longer matches.
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["role"] = "ADMIN".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
            parts[2]
        );
        assert!(verifier.verify(&forged).is_err());
        assert!(verifier.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_and_foreign_tokens_are_rejected() {
        let key = SigningKey::generate().unwrap();
        let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
        let now = chrono::Utc::now().timestamp();
        let expired = key
            .sign(&Claims {
                sub: Uuid::now_v7(),
                role: Role::Admin,
                iss: ISSUER.into(),
                iat: now - 600,
                exp: now - 300,
                ver: 1,
            })
            .unwrap();
        assert_eq!(
            verifier.verify(&expired).unwrap_err().to_string(),
            "token expired"
        );

        let other = SigningKey::generate().unwrap();
        let foreign = other
            .issue(Uuid::now_v7(), Role::Admin, 1, Duration::from_secs(60))
            .unwrap();
        assert!(verifier.verify(&foreign).is_err());
    }

    /// The verifier takes EdDSA only: a header naming another algorithm (RS256, none) is
    /// refused whatever its signature, and so is the public key used as an HMAC secret.
    #[test]
    fn tokens_of_other_algorithms_are_refused() {
        let key = SigningKey::generate().unwrap();
        let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
        let token = key
            .issue(Uuid::now_v7(), Role::Admin, 1, Duration::from_secs(60))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        for alg in ["RS256", "PS256", "HS256", "none"] {
            header["alg"] = alg.into();
            let relabelled = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
                parts[1],
                parts[2]
            );
            assert!(verifier.verify(&relabelled).is_err(), "{alg} accepted");
        }

        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let public = URL_SAFE_NO_PAD.decode(&key.public_key().x).unwrap();
        let mut hmac_header = Header::new(Algorithm::HS256);
        hmac_header.kid = Some(key.public_key().kid.clone());
        let secret = EncodingKey::from_secret(&public).unwrap();
        let confused = jsonwebtoken::encode(&hmac_header, &claims, &secret).unwrap();
        assert!(verifier.verify(&confused).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", " bEaReR abc"] {
            assert_eq!(bearer_token(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "abc", "Bearerabc"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn configured_keys_get_a_stable_id() {
        let key = SigningKey::generate().unwrap();
        let a = SigningKey::from_base64(&key.to_base64()).unwrap();
        let b = SigningKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.public_key().x, key.public_key().x);
        assert!(SigningKey::from_base64("bm90IGEga2V5").is_err());
    }

    #[test]
    fn keys_survive_a_pkcs8_round_trip() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.kid(), key.pkcs8()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
    }
}
