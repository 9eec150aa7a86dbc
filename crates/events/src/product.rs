//! Events of the products service.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// `product.created`: a new product is in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: Uuid,
    pub name: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
}

impl Event for ProductCreated {
    const TYPE: &'static str = "product.created";
}

/// `product.price_changed`: an admin changed the price (up or down).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceChanged {
    pub product_id: Uuid,
    pub name: String,
    pub currency: String,
    pub old_price_cents: i64,
    pub new_price_cents: i64,
}

impl Event for PriceChanged {
    const TYPE: &'static str = "product.price_changed";
}

/// Why stock changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StockChangeReason {
    /// An admin set the stock.
    Restock,
    /// An order reserved units.
    Reserved,
    /// A cancelled order gave its units back.
    Released,
}

/// `product.stock_changed`: every change of the stock level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockChanged {
    pub product_id: Uuid,
    pub name: String,
    pub old_stock: i64,
    pub new_stock: i64,
    pub reason: StockChangeReason,
    /// The order behind a reservation or release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
}

impl Event for StockChanged {
    const TYPE: &'static str = "product.stock_changed";
}

/// The stock level of one product at a threshold crossing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLevel {
    pub product_id: Uuid,
    pub name: String,
    pub stock: i64,
    /// The configured low-stock threshold at the time.
    pub threshold: i64,
}

/// `product.out_of_stock`: stock reached zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutOfStock(pub StockLevel);

impl Event for OutOfStock {
    const TYPE: &'static str = "product.out_of_stock";
}

/// `product.back_in_stock`: stock rose from zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BackInStock(pub StockLevel);

impl Event for BackInStock {
    const TYPE: &'static str = "product.back_in_stock";
}

/// `product.low_stock`: stock fell to or below the threshold (but not to zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LowStock(pub StockLevel);

impl Event for LowStock {
    const TYPE: &'static str = "product.low_stock";
}

/// `product.watched`: a user asked to hear of back-in-stock and price drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductWatched {
    pub product_id: Uuid,
    pub user_id: Uuid,
}

impl Event for ProductWatched {
    const TYPE: &'static str = "product.watched";
}
