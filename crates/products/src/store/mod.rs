//! The products service's tables: the catalog and its watches ([`products`]) and the
//! stock reservations of orders ([`reservations`]).

pub mod products;
pub mod reservations;

use chrono::{DateTime, Utc};
use herald_platform::db::to_datetime;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
    pub created_at: DateTime<Utc>,
}

pub(crate) const PRODUCT_COLUMNS: &str =
    "id, name, description, category, price_cents, currency, stock, created_at";

pub(crate) fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

pub(crate) fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    raw.parse()
        .map_err(|e| decode_error(format!("{column} '{raw}': {e}")))
}

pub(crate) fn product_from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: uuid_column(row, "id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        stock: row.try_get("stock")?,
        created_at: to_datetime(row.try_get("created_at")?),
    })
}
