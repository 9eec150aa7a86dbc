//! Events of the recommendations service.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// A product picked for a user, and why in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pick {
    pub product_id: Uuid,
    pub name: String,
    pub reason: String,
}

/// `recommendation.digest`: the user's top picks, of which at least one is new since their
/// last digest; at most one per user per digest period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationDigest {
    pub user_id: Uuid,
    pub picks: Vec<Pick>,
}

impl Event for RecommendationDigest {
    const TYPE: &'static str = "recommendation.digest";
}

/// `recommendation.category_interest`: a user showed interest in a category for the first
/// time (bought, put in the cart, wished for or viewed one of its products). Promotions for
/// that category reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryInterest {
    pub user_id: Uuid,
    /// Lowercase, as the catalog spells categories.
    pub category: String,
}

impl Event for CategoryInterest {
    const TYPE: &'static str = "recommendation.category_interest";
}
