//! What a buyer may ask for: the lines of an order and the size of a page of orders.

use std::collections::HashSet;

use herald_platform::ApiError;
use herald_platform::paging::page_size;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line as the client sends it, before parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineInput {
    pub product_id: String,
    pub quantity: i64,
}

/// How many units of one product a line orders: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity(i64);

impl Quantity {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 1000;

    pub fn parse(raw: i64) -> Result<Quantity, ApiError> {
        if !(Self::MIN..=Self::MAX).contains(&raw) {
            return Err(ApiError::bad_input(format!(
                "quantity must be between {} and {}, got {raw}",
                Self::MIN,
                Self::MAX
            )));
        }
        Ok(Quantity(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A parsed line: a well-formed product id and a valid quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductLine {
    pub product_id: Uuid,
    pub quantity: Quantity,
}

/// What a buyer asks for: 1 to 100 lines, each product at most once. Prices are not part
/// of it: they come from the catalog when the stock is reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    lines: Vec<ProductLine>,
}

impl OrderRequest {
    pub const MAX_LINES: usize = herald_events::MAX_ORDER_LINES;

    pub fn parse(items: &[LineInput]) -> Result<OrderRequest, ApiError> {
        if items.is_empty() {
            return Err(ApiError::bad_input("an order needs at least one item"));
        }
        if items.len() > Self::MAX_LINES {
            return Err(ApiError::bad_input(format!(
                "an order has at most {} items, got {}",
                Self::MAX_LINES,
                items.len()
            )));
        }
        let mut seen = HashSet::with_capacity(items.len());
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            let product_id: Uuid = item.product_id.trim().parse().map_err(|_| {
                ApiError::bad_input(format!("'{}' is not a product id", item.product_id))
            })?;
            if !seen.insert(product_id) {
                return Err(ApiError::bad_input(format!(
                    "product {product_id} appears more than once; order it once with the total quantity"
                )));
            }
            let quantity = Quantity::parse(item.quantity).map_err(|e| {
                ApiError::bad_input(format!("product {product_id}: {}", e.body().message))
            })?;
            lines.push(ProductLine {
                product_id,
                quantity,
            });
        }
        Ok(OrderRequest { lines })
    }

    pub fn lines(&self) -> &[ProductLine] {
        &self.lines
    }
}

/// How many orders one page of `myOrders` holds: 1 to 100, 20 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(i64);

impl PageSize {
    pub const DEFAULT: i64 = 20;
    pub const MAX: i64 = 100;

    pub fn parse(first: Option<i64>) -> Result<PageSize, ApiError> {
        page_size(first, Self::DEFAULT, Self::MAX).map(PageSize)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use herald_platform::ErrorCode;

    use super::*;

    fn line(product_id: &str, quantity: i64) -> LineInput {
        LineInput {
            product_id: product_id.to_owned(),
            quantity,
        }
    }

    fn bad_input_message(result: Result<OrderRequest, ApiError>) -> String {
        let e = result.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadUserInput, "{e}");
        e.to_string()
    }

    #[test]
    fn a_valid_request_keeps_the_buyers_order_of_lines() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let request =
            OrderRequest::parse(&[line(&b.to_string(), 1000), line(&a.to_string(), 1)]).unwrap();
        let lines: Vec<(Uuid, i64)> = request
            .lines()
            .iter()
            .map(|l| (l.product_id, l.quantity.get()))
            .collect();
        assert_eq!(lines, [(b, 1000), (a, 1)]);

        let hundred: Vec<LineInput> = (0..100)
            .map(|_| line(&Uuid::now_v7().to_string(), 1))
            .collect();
        assert_eq!(OrderRequest::parse(&hundred).unwrap().lines().len(), 100);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let id = Uuid::now_v7().to_string();
        assert!(bad_input_message(OrderRequest::parse(&[])).contains("at least one item"));
        for quantity in [0, -1, 1001, 1_000_000, i64::MIN, i64::MAX] {
            let message = bad_input_message(OrderRequest::parse(&[line(&id, quantity)]));
            assert!(
                message.contains("between 1 and 1000") && message.contains(&id),
                "{message}"
            );
        }
        let too_many: Vec<LineInput> = (0..101)
            .map(|_| line(&Uuid::now_v7().to_string(), 1))
            .collect();
        assert!(bad_input_message(OrderRequest::parse(&too_many)).contains("at most 100"));
        let twice = bad_input_message(OrderRequest::parse(&[line(&id, 1), line(&id, 2)]));
        assert!(twice.contains("more than once") && twice.contains(&id));
        for malformed in ["", "espresso", "123"] {
            let message = bad_input_message(OrderRequest::parse(&[line(malformed, 1)]));
            assert!(message.contains("is not a product id"), "{message}");
        }
    }

    #[test]
    fn page_size_is_between_one_and_a_hundred() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 20);
        assert_eq!(PageSize::parse(Some(100)).unwrap().get(), 100);
        assert_eq!(PageSize::parse(Some(1)).unwrap().get(), 1);
        for bad in [0, -1, 101] {
            assert_eq!(
                PageSize::parse(Some(bad)).unwrap_err().code(),
                ErrorCode::BadUserInput
            );
        }
    }
}
