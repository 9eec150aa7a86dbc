//! The catalog's rules, without I/O: input is parsed at the edge into types that carry
//! proof of validity. Products here; the listing and reservation requests in submodules.

mod listing;
mod reservation;

pub use listing::{PageRequest, ProductFilter, fold};
pub use reservation::{ReservationInput, ReservationItemInput, ReservationRequest};

use herald_platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::Product;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
pub const MAX_CATEGORY_CHARS: usize = 64;
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// Ids per lookup, and lines per reservation.
pub const MAX_BATCH: usize = 1000;
pub const DEFAULT_CURRENCY: &str = "USD";

/// Trimmed, 1 to `max` characters, no control characters.
fn single_line(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ApiError::bad_input(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_input(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

fn name(raw: &str) -> Result<String, ApiError> {
    single_line("name", raw, MAX_NAME_CHARS)
}

/// Trimmed, at most 5000 characters; line breaks and tabs are fine.
fn description(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_input(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_input(
            "description must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Categories are stored trimmed and lowercased, and matched the same way.
pub fn category(raw: &str) -> Result<String, ApiError> {
    single_line("category", &raw.trim().to_lowercase(), MAX_CATEGORY_CHARS)
}

fn price_cents(raw: i64) -> Result<i64, ApiError> {
    if !(0..=MAX_PRICE_CENTS).contains(&raw) {
        return Err(ApiError::bad_input(format!(
            "priceCents must be between 0 and {MAX_PRICE_CENTS}, got {raw}"
        )));
    }
    Ok(raw)
}

/// Three ASCII letters, stored uppercase.
fn currency(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.len() != 3 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::bad_input(format!(
            "currency must be three letters (an ISO 4217 code like USD), got '{value}'"
        )));
    }
    Ok(value.to_ascii_uppercase())
}

pub fn stock(raw: i64) -> Result<i64, ApiError> {
    if !(0..=MAX_STOCK).contains(&raw) {
        return Err(ApiError::bad_input(format!(
            "stock must be between 0 and {MAX_STOCK}, got {raw}"
        )));
    }
    Ok(raw)
}

/// A product id from a path or a list: anything that is not a UUID names no product.
pub fn product_id(raw: &str) -> Option<Uuid> {
    raw.trim().parse().ok()
}

/// The body of `POST /products`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub category: String,
    pub price_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub stock: i64,
}

/// A product to add to the catalog, valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
}

impl NewProduct {
    pub fn parse(input: &ProductInput) -> Result<NewProduct, ApiError> {
        Ok(NewProduct {
            name: name(&input.name)?,
            description: description(input.description.as_deref().unwrap_or(""))?,
            category: category(&input.category)?,
            price_cents: price_cents(input.price_cents)?,
            currency: currency(input.currency.as_deref().unwrap_or(DEFAULT_CURRENCY))?,
            stock: stock(input.stock)?,
        })
    }
}

/// The body of `PATCH /products/{id}`: absent (or null) fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
}

/// The catalog details of a product, as a patch leaves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDetails {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
}

impl ProductPatch {
    /// Every field valid, before the product is looked at.
    pub fn validate(&self) -> Result<(), ApiError> {
        self.apply(&ProductDetails {
            name: "-".to_owned(),
            description: String::new(),
            category: "-".to_owned(),
            price_cents: 0,
        })
        .map(|_| ())
    }

    pub fn apply(&self, current: &ProductDetails) -> Result<ProductDetails, ApiError> {
        Ok(ProductDetails {
            name: self
                .name
                .as_deref()
                .map(name)
                .transpose()?
                .unwrap_or_else(|| current.name.clone()),
            description: self
                .description
                .as_deref()
                .map(description)
                .transpose()?
                .unwrap_or_else(|| current.description.clone()),
            category: self
                .category
                .as_deref()
                .map(category)
                .transpose()?
                .unwrap_or_else(|| current.category.clone()),
            price_cents: self
                .price_cents
                .map(price_cents)
                .transpose()?
                .unwrap_or(current.price_cents),
        })
    }
}

impl Product {
    pub fn details(&self) -> ProductDetails {
        ProductDetails {
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            price_cents: self.price_cents,
        }
    }
}

pub fn no_product(id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(format!("no product {id}"))
}

pub fn insufficient_stock(name: &str, left: i64) -> ApiError {
    ApiError::new(
        ErrorCode::InsufficientStock,
        format!("not enough stock for {name} ({left} left)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProductInput {
        ProductInput {
            name: "  Espresso Beans ".into(),
            description: None,
            category: " Coffee ".into(),
            price_cents: 1299,
            currency: None,
            stock: 10,
        }
    }

    fn rejected(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let e = result.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadUserInput, "{e}");
        e.to_string()
    }

    #[test]
    fn a_new_product_is_normalised_with_defaults() {
        let p = NewProduct::parse(&input()).unwrap();
        assert_eq!(
            p,
            NewProduct {
                name: "Espresso Beans".into(),
                description: String::new(),
                category: "coffee".into(),
                price_cents: 1299,
                currency: "USD".into(),
                stock: 10,
            }
        );
        let eur = NewProduct::parse(&ProductInput {
            currency: Some("eur".into()),
            description: Some("Dark roast.\nWhole beans.".into()),
            ..input()
        })
        .unwrap();
        assert_eq!(eur.currency, "EUR");
        assert_eq!(eur.description, "Dark roast.\nWhole beans.");
    }

    #[test]
    fn each_field_is_checked() {
        let cases: Vec<(ProductInput, &str)> = vec![
            (
                ProductInput {
                    name: "   ".into(),
                    ..input()
                },
                "name must not be empty",
            ),
            (
                ProductInput {
                    name: "x".repeat(201),
                    ..input()
                },
                "name must be at most 200",
            ),
            (
                ProductInput {
                    name: "Beans\u{7}".into(),
                    ..input()
                },
                "control characters",
            ),
            (
                ProductInput {
                    description: Some("d".repeat(5001)),
                    ..input()
                },
                "description must be at most 5000",
            ),
            (
                ProductInput {
                    category: "".into(),
                    ..input()
                },
                "category must not be empty",
            ),
            (
                ProductInput {
                    category: "c".repeat(65),
                    ..input()
                },
                "category must be at most 64",
            ),
            (
                ProductInput {
                    price_cents: -1,
                    ..input()
                },
                "priceCents must be between 0",
            ),
            (
                ProductInput {
                    price_cents: MAX_PRICE_CENTS + 1,
                    ..input()
                },
                "priceCents",
            ),
            (
                ProductInput {
                    currency: Some("US".into()),
                    ..input()
                },
                "currency must be three letters",
            ),
            (
                ProductInput {
                    currency: Some("U$D".into()),
                    ..input()
                },
                "currency",
            ),
            (
                ProductInput {
                    stock: -1,
                    ..input()
                },
                "stock must be between 0",
            ),
            (
                ProductInput {
                    stock: MAX_STOCK + 1,
                    ..input()
                },
                "stock",
            ),
        ];
        for (bad, message) in cases {
            let got = rejected(NewProduct::parse(&bad));
            assert!(got.contains(message), "{got:?} should mention {message:?}");
        }
        assert!(
            NewProduct::parse(&ProductInput {
                name: "é".repeat(200),
                price_cents: 0,
                stock: 0,
                ..input()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let current = ProductDetails {
            name: "Beans".into(),
            description: "Dark".into(),
            category: "coffee".into(),
            price_cents: 100,
        };
        let patch: ProductPatch =
            serde_json::from_str(r#"{"priceCents": 80, "category": "Tea ", "name": null}"#)
                .unwrap();
        let next = patch.apply(&current).unwrap();
        assert_eq!(
            next,
            ProductDetails {
                category: "tea".into(),
                price_cents: 80,
                ..current.clone()
            }
        );
        assert_eq!(ProductPatch::default().apply(&current).unwrap(), current);
        rejected(
            ProductPatch {
                price_cents: Some(-5),
                ..Default::default()
            }
            .validate(),
        );
        rejected(
            ProductPatch {
                name: Some(" ".into()),
                ..Default::default()
            }
            .validate(),
        );
    }
}
