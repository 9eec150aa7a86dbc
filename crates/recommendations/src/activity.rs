//! Activity signals as the API receives them, parsed at the edge: after [`Activity::parse`]
//! a signal names its product or carries a query of the right length.

use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::recommender::SignalKind;

/// The longest search query kept, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// `POST /activity`'s body: `{"type":"VIEW","productId":"…"}` or `{"type":"SEARCH","query":"…"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub product_id: Option<String>,
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// VIEW, CART or WISHLIST of one product.
    Product {
        kind: SignalKind,
        product_id: Uuid,
    },
    Search {
        query: String,
    },
}

impl Activity {
    pub fn parse(input: &ActivityInput) -> ApiResult<Activity> {
        let raw = input
            .kind
            .as_deref()
            .ok_or_else(|| ApiError::bad_input("type is required"))?;
        let kind = SignalKind::parse(raw).ok_or_else(|| {
            ApiError::bad_input(format!(
                "type '{raw}' is not one of VIEW, CART, WISHLIST, SEARCH"
            ))
        })?;
        match kind {
            SignalKind::Search => {
                if input.product_id.is_some() {
                    return Err(ApiError::bad_input("a SEARCH has a query, not a productId"));
                }
                let query = input.query.as_deref().unwrap_or("").trim();
                let chars = query.chars().count();
                if chars == 0 || chars > MAX_QUERY_CHARS {
                    return Err(ApiError::bad_input(format!(
                        "query must be 1 to {MAX_QUERY_CHARS} characters"
                    )));
                }
                Ok(Activity::Search {
                    query: query.to_owned(),
                })
            }
            SignalKind::View | SignalKind::Cart | SignalKind::Wishlist => {
                if input.query.is_some() {
                    return Err(ApiError::bad_input(format!(
                        "a {} names a productId, not a query",
                        kind.as_str()
                    )));
                }
                let raw = input.product_id.as_deref().ok_or_else(|| {
                    ApiError::bad_input(format!("a {} needs a productId", kind.as_str()))
                })?;
                let product_id = raw.trim().parse().map_err(|_| {
                    ApiError::bad_input(format!("productId '{raw}' is not a product id"))
                })?;
                Ok(Activity::Product { kind, product_id })
            }
        }
    }

    pub fn kind(&self) -> SignalKind {
        match self {
            Activity::Product { kind, .. } => *kind,
            Activity::Search { .. } => SignalKind::Search,
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_platform::error::ErrorCode;

    use super::*;

    fn input(kind: Option<&str>, product_id: Option<&str>, query: Option<&str>) -> ActivityInput {
        ActivityInput {
            kind: kind.map(str::to_owned),
            product_id: product_id.map(str::to_owned),
            query: query.map(str::to_owned),
        }
    }

    #[test]
    fn signals_name_a_product_or_carry_a_query() {
        let id = Uuid::now_v7();
        let view = Activity::parse(&input(Some("CART"), Some(&id.to_string()), None)).unwrap();
        assert_eq!(
            view,
            Activity::Product {
                kind: SignalKind::Cart,
                product_id: id
            }
        );
        let search = Activity::parse(&input(Some("SEARCH"), None, Some("  coffee "))).unwrap();
        assert_eq!(
            search,
            Activity::Search {
                query: "coffee".to_owned()
            }
        );
        let longest = "é".repeat(MAX_QUERY_CHARS);
        assert!(Activity::parse(&input(Some("SEARCH"), None, Some(&longest))).is_ok());
    }

    #[test]
    fn malformed_signals_are_bad_input() {
        let id = Uuid::now_v7().to_string();
        let too_long = "a".repeat(MAX_QUERY_CHARS + 1);
        for bad in [
            input(None, Some(&id), None),
            input(Some("PURCHASE"), Some(&id), None),
            input(Some("view"), Some(&id), None),
            input(Some("VIEW"), None, None),
            input(Some("VIEW"), Some("espresso"), None),
            input(Some("WISHLIST"), Some(&id), Some("coffee")),
            input(Some("SEARCH"), None, None),
            input(Some("SEARCH"), None, Some("   ")),
            input(Some("SEARCH"), None, Some(&too_long)),
            input(Some("SEARCH"), Some(&id), Some("coffee")),
        ] {
            let err = Activity::parse(&bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadUserInput, "{bad:?}");
        }
    }
}
