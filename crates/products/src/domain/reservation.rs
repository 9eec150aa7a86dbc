//! What an order asks the stock for.

use herald_platform::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MAX_BATCH, MAX_QUANTITY, no_product, product_id};

/// The body of `POST /reservations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationInput {
    pub order_id: String,
    pub items: Vec<ReservationItemInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationItemInput {
    pub product_id: String,
    pub quantity: i64,
}

/// What an order asks to reserve: distinct products, positive quantities, request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub order_id: Uuid,
    pub lines: Vec<(Uuid, i64)>,
}

impl ReservationRequest {
    /// BAD_USER_INPUT for a malformed request; NOT_FOUND for a product id that cannot
    /// name a product (like an unknown one).
    pub fn parse(input: &ReservationInput) -> Result<ReservationRequest, ApiError> {
        let order_id = input.order_id.trim().parse::<Uuid>().map_err(|_| {
            ApiError::bad_input(format!("orderId must be a UUID, got '{}'", input.order_id))
        })?;
        line_count(input.items.len())?;
        let mut seen: Vec<String> = Vec::with_capacity(input.items.len());
        for item in &input.items {
            quantity(item.quantity)?;
            let key = item.product_id.trim().to_ascii_lowercase();
            let key = product_id(&key).map_or(key, |id| id.to_string());
            if seen.contains(&key) {
                return Err(repeated(item.product_id.trim()));
            }
            seen.push(key);
        }
        let lines = input
            .items
            .iter()
            .map(|item| {
                product_id(&item.product_id)
                    .map(|id| (id, item.quantity))
                    .ok_or_else(|| no_product(item.product_id.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReservationRequest { order_id, lines })
    }

    /// The rules [`ReservationRequest::parse`] applies, for a request built in process:
    /// BAD_USER_INPUT if it breaks one.
    pub fn check(&self) -> Result<(), ApiError> {
        line_count(self.lines.len())?;
        for (i, (product_id, units)) in self.lines.iter().enumerate() {
            quantity(*units)?;
            if self.lines[..i].iter().any(|(seen, _)| seen == product_id) {
                return Err(repeated(product_id));
            }
        }
        Ok(())
    }

    /// The request as `POST /reservations` takes it.
    pub fn input(&self) -> ReservationInput {
        ReservationInput {
            order_id: self.order_id.to_string(),
            items: self
                .lines
                .iter()
                .map(|(product_id, quantity)| ReservationItemInput {
                    product_id: product_id.to_string(),
                    quantity: *quantity,
                })
                .collect(),
        }
    }
}

fn line_count(lines: usize) -> Result<(), ApiError> {
    if lines == 0 {
        return Err(ApiError::bad_input("items must name at least one product"));
    }
    if lines > MAX_BATCH {
        return Err(ApiError::bad_input(format!(
            "at most {MAX_BATCH} items per reservation"
        )));
    }
    Ok(())
}

fn quantity(units: i64) -> Result<(), ApiError> {
    if !(1..=MAX_QUANTITY).contains(&units) {
        return Err(ApiError::bad_input(format!(
            "quantity must be between 1 and {MAX_QUANTITY}, got {units}"
        )));
    }
    Ok(())
}

fn repeated(product_id: impl std::fmt::Display) -> ApiError {
    ApiError::bad_input(format!(
        "product {product_id} appears more than once; give it one line with the total quantity"
    ))
}

#[cfg(test)]
mod tests {
    use herald_platform::ErrorCode;

    use super::*;

    fn rejected(result: Result<ReservationRequest, ApiError>) {
        assert_eq!(result.unwrap_err().code(), ErrorCode::BadUserInput);
    }

    fn reservation(items: &[(&str, i64)]) -> ReservationInput {
        ReservationInput {
            order_id: Uuid::now_v7().to_string(),
            items: items
                .iter()
                .map(|(id, quantity)| ReservationItemInput {
                    product_id: (*id).to_owned(),
                    quantity: *quantity,
                })
                .collect(),
        }
    }

    #[test]
    fn reservations_need_distinct_products_and_positive_quantities() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let ok =
            ReservationRequest::parse(&reservation(&[(&b.to_string(), 2), (&a.to_string(), 1)]))
                .unwrap();
        assert_eq!(ok.lines, vec![(b, 2), (a, 1)]);

        rejected(ReservationRequest::parse(&reservation(&[])));
        rejected(ReservationRequest::parse(&reservation(&[(
            &a.to_string(),
            0,
        )])));
        rejected(ReservationRequest::parse(&reservation(&[(
            &a.to_string(),
            -2,
        )])));
        let upper = a.to_string().to_uppercase();
        rejected(ReservationRequest::parse(&reservation(&[
            (&a.to_string(), 1),
            (&upper, 1),
        ])));
        let mut bad_order = reservation(&[(&a.to_string(), 1)]);
        bad_order.order_id = "order-1".into();
        rejected(ReservationRequest::parse(&bad_order));

        // A request built in process is held to the same rules, and parses back whole.
        assert_eq!(ReservationRequest::parse(&ok.input()).unwrap(), ok);
        ok.check().unwrap();
        for lines in [vec![], vec![(a, 0)], vec![(a, 1), (b, 1), (a, 2)]] {
            rejected(
                ReservationRequest {
                    order_id: ok.order_id,
                    lines,
                }
                .check()
                .map(|()| ok.clone()),
            );
        }

        let unknown = ReservationRequest::parse(&reservation(&[("beans", 1)])).unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::NotFound);
        assert_eq!(unknown.to_string(), "no product beans");
    }
}
