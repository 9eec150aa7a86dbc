//! Answers kept for the polls that repeat them.
//!
//! An open app asks for its inbox (a page, the unread count) again and again, and the
//! answer changes only when the inbox does. The notifications service says what each page
//! and count was read under ([`InboxVersion`]); a query whose every root field was read
//! under the same version, and that answered without an error, is kept here, serialized,
//! for the signed-in user who asked, under the request's text (query, operation name,
//! variables). The same request from the same user is answered from here once the inbox
//! confirms that nothing changed since ([`InboxApi::unchanged_since`]: one round trip to the
//! cache in the notifications service, no statement): no resolver runs and nothing is
//! serialized again. On every gateway replica an answer read before a change is never
//! served after it; each is kept at most [`KEPT_FOR`].

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Request, Response};
use axum::body::Bytes;
use herald_notifications::inbox::{InboxApi, InboxVersion};
use herald_platform::auth::Claims;
use uuid::Uuid;

use crate::metrics::Outcome;

/// The longest an answer is kept (the notifications service keeps its pages as long).
const KEPT_FOR: Duration = Duration::from_secs(60);
/// Bytes of kept answers, for all users: about 6,000 full inbox pages.
const KEPT_BYTES: u64 = 32 * 1024 * 1024;
/// Requests longer than this (query, name and variables) are not kept.
const LONGEST_REQUEST: usize = 8 * 1024;

/// What the root fields of one request were read under, as its resolvers say.
#[derive(Clone, Default)]
pub struct ReadVersions(Arc<Mutex<Vec<Option<InboxVersion>>>>);

impl ReadVersions {
    /// A root field's answer was read under `version` (None: it must not be kept).
    pub fn push(&self, version: Option<InboxVersion>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(version);
    }

    /// The one version every one of `fields` root fields was read under, if there is one.
    fn common(&self, fields: usize) -> Option<InboxVersion> {
        let versions = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if versions.len() != fields {
            return None;
        }
        let first = (*versions.first()?)?;
        versions
            .iter()
            .all(|version| *version == Some(first))
            .then_some(first)
    }
}

/// A request as kept: its user and its text.
pub struct KeptKey {
    user: Uuid,
    text: String,
    hash: u64,
}

struct Kept {
    /// Compared on a hit: different texts may share a hash.
    text: String,
    version: InboxVersion,
    json: Bytes,
    outcomes: Vec<Outcome>,
}

/// A kept answer, ready to send, and its root fields' outcomes (for the metrics).
pub struct KeptAnswer {
    pub json: Bytes,
    pub outcomes: Vec<Outcome>,
}

#[derive(Clone)]
pub struct KeptAnswers {
    inbox: Arc<dyn InboxApi>,
    answers: moka::sync::Cache<(Uuid, u64), Arc<Kept>>,
    hasher: RandomState,
}

impl KeptAnswers {
    pub fn new(inbox: Arc<dyn InboxApi>) -> KeptAnswers {
        KeptAnswers {
            inbox,
            answers: moka::sync::Cache::builder()
                .max_capacity(KEPT_BYTES)
                .weigher(|_, kept: &Arc<Kept>| {
                    u32::try_from(kept.json.len() + kept.text.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(KEPT_FOR)
                .build(),
            hasher: RandomState::new(),
        }
    }

    /// What `request` would be kept under for the signed-in `claims`; None for a request
    /// that is never kept (too long, variables that do not serialize).
    pub fn key(&self, request: &Request, claims: &Claims) -> Option<KeptKey> {
        let variables = serde_json::to_string(&request.variables).ok()?;
        let name = request.operation_name.as_deref().unwrap_or_default();
        let length = request.query.len() + name.len() + variables.len() + 2;
        if length > LONGEST_REQUEST {
            return None;
        }
        let mut text = String::with_capacity(length);
        for part in [request.query.as_str(), "\0", name, "\0", &variables] {
            text.push_str(part);
        }
        Some(KeptKey {
            user: claims.sub,
            hash: self.hasher.hash_one(&text),
            text,
        })
    }

    /// The answer kept for this request, if the inbox it was read from is unchanged.
    pub async fn get(&self, key: &KeptKey, claims: &Claims) -> Option<KeptAnswer> {
        let kept = self
            .answers
            .get(&(key.user, key.hash))
            .filter(|kept| kept.text == key.text)?;
        let unchanged = self.inbox.unchanged_since(claims, &kept.version).await;
        let served = matches!(unchanged, Ok(true));
        let outcome = if served { "served" } else { "changed" };
        metrics::counter!("gateway_kept_answers_total", "outcome" => outcome).increment(1);
        served.then(|| KeptAnswer {
            json: kept.json.clone(),
            outcomes: kept.outcomes.clone(),
        })
    }

    /// Keeps `response` (finished: in query order, errors coded) if it can be: no
    /// errors, and every root field it answered read under one version. Returns it
    /// serialized when kept.
    pub fn keep(
        &self,
        key: KeptKey,
        versions: &ReadVersions,
        response: &Response,
        outcomes: Vec<Outcome>,
    ) -> Option<Bytes> {
        if !response.errors.is_empty() {
            return None;
        }
        let async_graphql::Value::Object(data) = &response.data else {
            return None;
        };
        let version = versions.common(data.len())?;
        let json = Bytes::from(serde_json::to_vec(response).ok()?);
        self.answers.insert(
            (key.user, key.hash),
            Arc::new(Kept {
                text: key.text,
                version,
                json: json.clone(),
                outcomes,
            }),
        );
        metrics::counter!("gateway_kept_answers_total", "outcome" => "kept").increment(1);
        Some(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(generation: i64) -> Option<InboxVersion> {
        Some(InboxVersion {
            generation,
            until: None,
        })
    }

    #[test]
    fn an_answer_is_kept_only_when_every_root_field_was_read_under_one_version() {
        let versions = ReadVersions::default();
        assert_eq!(versions.common(0), None, "nothing read under a version");
        versions.push(version(7));
        assert_eq!(versions.common(1), version(7));
        assert_eq!(versions.common(2), None, "a root field read under none");
        versions.push(version(7));
        assert_eq!(versions.common(2), version(7));
        versions.push(version(8));
        assert_eq!(versions.common(3), None, "a change between two root fields");
        let unkept = ReadVersions::default();
        unkept.push(None);
        assert_eq!(unkept.common(1), None, "a field that must not be kept");
    }
}
