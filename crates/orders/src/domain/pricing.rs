//! How the catalog's answer to a reservation prices an order.

use uuid::Uuid;

use super::OrderRequest;

/// A line as the catalog reserved and priced it (the products service's answer).
pub use herald_products::store::reservations::ReservedLine;

/// An order's lines with the catalog's names and prices, in the order the buyer gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedOrder {
    pub lines: Vec<PricedLine>,
    pub total_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub product_id: Uuid,
    pub product_name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The buyer's fault: one order is paid in one currency.
    #[error(
        "all items of an order must share one currency: {first} is in {first_currency}, {other} in {other_currency}"
    )]
    MixedCurrencies {
        first: String,
        first_currency: String,
        other: String,
        other_currency: String,
    },
    /// The buyer's fault: the public API counts cents in 32-bit integers.
    #[error(
        "the order total of {total_cents} cents exceeds the maximum of {max} cents; split the order"
    )]
    TotalTooLarge { total_cents: i64, max: i64 },
    /// The products service answered something that does not fit the request.
    #[error("the reservation does not match the order: {0}")]
    Mismatch(String),
}

/// The largest total an order may have: GraphQL's `Int` is 32 bits.
pub const MAX_TOTAL_CENTS: i64 = i32::MAX as i64;

/// Prices `request` with the reservation's lines: every requested line must be reserved
/// in full, once, at a non-negative price, all in one currency.
pub fn price_order(
    request: &OrderRequest,
    reserved: &[ReservedLine],
) -> Result<PricedOrder, PricingError> {
    if reserved.len() != request.lines().len() {
        return Err(PricingError::Mismatch(format!(
            "{} lines ordered, {} reserved",
            request.lines().len(),
            reserved.len()
        )));
    }
    let mut lines = Vec::with_capacity(reserved.len());
    let mut first: Option<&ReservedLine> = None;
    let mut total: i64 = 0;
    for wanted in request.lines() {
        let mut matching = reserved
            .iter()
            .filter(|r| r.product_id == wanted.product_id);
        let line = match (matching.next(), matching.next()) {
            (Some(line), None) => line,
            _ => {
                return Err(PricingError::Mismatch(format!(
                    "product {} is not reserved exactly once",
                    wanted.product_id
                )));
            }
        };
        if line.quantity != wanted.quantity.get() {
            return Err(PricingError::Mismatch(format!(
                "product {}: {} ordered, {} reserved",
                wanted.product_id,
                wanted.quantity.get(),
                line.quantity
            )));
        }
        if line.unit_price_cents < 0 {
            return Err(PricingError::Mismatch(format!(
                "product {} has a negative price",
                wanted.product_id
            )));
        }
        let first_line = *first.get_or_insert(line);
        if first_line.currency != line.currency {
            return Err(PricingError::MixedCurrencies {
                first: first_line.name.clone(),
                first_currency: first_line.currency.clone(),
                other: line.name.clone(),
                other_currency: line.currency.clone(),
            });
        }
        total = line
            .unit_price_cents
            .checked_mul(line.quantity)
            .and_then(|amount| total.checked_add(amount))
            .ok_or_else(|| PricingError::Mismatch("the total overflows".to_owned()))?;
        lines.push(PricedLine {
            product_id: line.product_id,
            product_name: line.name.clone(),
            category: line.category.clone(),
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        });
    }
    if total > MAX_TOTAL_CENTS {
        return Err(PricingError::TotalTooLarge {
            total_cents: total,
            max: MAX_TOTAL_CENTS,
        });
    }
    let currency = first.map(|line| line.currency.clone()).unwrap_or_default();
    Ok(PricedOrder {
        lines,
        total_cents: total,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LineInput;

    fn reserved(
        product_id: Uuid,
        name: &str,
        quantity: i64,
        cents: i64,
        cur: &str,
    ) -> ReservedLine {
        ReservedLine {
            product_id,
            name: name.to_owned(),
            category: "coffee".to_owned(),
            quantity,
            unit_price_cents: cents,
            currency: cur.to_owned(),
        }
    }

    fn request(lines: &[(Uuid, i64)]) -> OrderRequest {
        let inputs: Vec<LineInput> = lines
            .iter()
            .map(|(id, quantity)| LineInput {
                product_id: id.to_string(),
                quantity: *quantity,
            })
            .collect();
        OrderRequest::parse(&inputs).unwrap()
    }

    #[test]
    fn the_reservation_prices_the_order_in_the_buyers_line_order() {
        let (beans, mill) = (Uuid::now_v7(), Uuid::now_v7());
        let order = request(&[(beans, 3), (mill, 1)]);
        // The products service may answer in any order.
        let answer = [
            reserved(mill, "Mill", 1, 4_999, "EUR"),
            reserved(beans, "Beans", 3, 1_250, "EUR"),
        ];
        let priced = price_order(&order, &answer).unwrap();
        assert_eq!(priced.total_cents, 3 * 1_250 + 4_999);
        assert_eq!(priced.currency, "EUR");
        let names: Vec<&str> = priced
            .lines
            .iter()
            .map(|l| l.product_name.as_str())
            .collect();
        assert_eq!(names, ["Beans", "Mill"]);
        assert_eq!(priced.lines[0].unit_price_cents, 1_250);
        assert_eq!(priced.lines[0].category, "coffee");
    }

    #[test]
    fn totals_must_fit_the_public_apis_integers() {
        let beans = Uuid::now_v7();
        let order = request(&[(beans, 1000)]);
        let answer = [reserved(beans, "Gold Beans", 1000, 10_000_000, "USD")];
        let e = price_order(&order, &answer).unwrap_err();
        assert!(matches!(e, PricingError::TotalTooLarge { .. }), "{e}");
        let fits = [reserved(beans, "Beans", 1000, 2_000_000, "USD")];
        assert_eq!(
            price_order(&order, &fits).unwrap().total_cents,
            2_000_000_000
        );
    }

    #[test]
    fn mixed_currencies_are_the_buyers_problem_and_odd_answers_are_ours() {
        let (beans, mill) = (Uuid::now_v7(), Uuid::now_v7());
        let order = request(&[(beans, 3), (mill, 1)]);
        let mixed = [
            reserved(beans, "Beans", 3, 1_250, "EUR"),
            reserved(mill, "Mill", 1, 4_999, "USD"),
        ];
        let e = price_order(&order, &mixed).unwrap_err();
        assert!(matches!(e, PricingError::MixedCurrencies { .. }));
        assert_eq!(
            e.to_string(),
            "all items of an order must share one currency: Beans is in EUR, Mill in USD"
        );

        let odd_answers = [
            vec![reserved(beans, "Beans", 3, 1_250, "EUR")],
            vec![
                reserved(beans, "Beans", 2, 1_250, "EUR"),
                reserved(mill, "Mill", 1, 4_999, "EUR"),
            ],
            vec![
                reserved(beans, "Beans", 3, 1_250, "EUR"),
                reserved(beans, "Beans", 3, 1_250, "EUR"),
            ],
            vec![
                reserved(beans, "Beans", 3, -1, "EUR"),
                reserved(mill, "Mill", 1, 4_999, "EUR"),
            ],
            vec![
                reserved(beans, "Beans", 3, i64::MAX / 2, "EUR"),
                reserved(mill, "Mill", 1, 4_999, "EUR"),
            ],
        ];
        for answer in odd_answers {
            assert!(
                matches!(price_order(&order, &answer), Err(PricingError::Mismatch(_))),
                "{answer:?}"
            );
        }
    }
}
